"""The parallel suite's order: each worker's first chunk opens with its share of heavy tests."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from tests.scheduling import balanced_order


@dataclass
class Item:
    nodeid: str
    marks: dict = field(default_factory=dict)

    def get_closest_marker(self, name):
        return self.marks.get(name)


def heavy(nodeid, seconds, group=False):
    kwargs = {"group": True} if group else {}
    return Item(nodeid, {"heavy": pytest.mark.heavy(seconds, **kwargs).mark})


def test_heavy_tests_are_dealt_longest_first_to_the_head_of_each_chunk():
    light = [Item(f"tests/test_x.py::test_{i}") for i in range(8)]
    items = [
        light[0],
        heavy("tests/a.py::test_a", 30),
        light[1],
        heavy("tests/b.py::test_b", 80),
        *light[2:5],
        heavy("tests/c.py::test_c", 60),
        *light[5:],
    ]
    ordered = balanced_order(items, workers=2)
    assert sorted(i.nodeid for i in ordered) == sorted(i.nodeid for i in items)  # none lost
    first, second = ordered[:5], ordered[5:]  # worksteal sends 11 // 2 = 5 to the first worker
    # 80 to worker 0, 60 to worker 1, 30 to the less loaded worker 1; light ones fill in order
    assert [i.nodeid for i in first] == ["tests/b.py::test_b", *(i.nodeid for i in light[:4])]
    assert [i.nodeid for i in second[:2]] == ["tests/c.py::test_c", "tests/a.py::test_a"]
    assert second[2:] == light[4:]


def test_a_grouped_module_stays_together_on_one_worker():
    items = [
        heavy("tests/g.py::test_1", 65, group=True),
        Item("tests/x.py::test_light"),
        heavy("tests/g.py::test_2", 65, group=True),
        heavy("tests/e.py::test_e", 70),
    ]
    ordered = balanced_order(items, workers=2)
    assert [i.nodeid for i in ordered[:2]] == ["tests/e.py::test_e", "tests/x.py::test_light"]
    assert [i.nodeid for i in ordered[2:]] == ["tests/g.py::test_1", "tests/g.py::test_2"]
