"""Studies: the study framework (``framework``) and one module per study (``study_<name>.py``).

A study says which recipes to run as parts (over seeds, sweeps and a quick profile) and
writes one report that answers its question; ``runner`` discovers the study modules.
"""
