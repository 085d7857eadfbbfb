"""cluster.where, the pure part: a record and the topology → one row per fragment, and the table."""
import base64
import os

import pytest

from minis3 import config
from minis3.cluster import where
from minis3.ec.codec import Codec
from minis3.ec.placement import place
from minis3.storage import audit, blocks

TOPO = config.parse(config.default_doc())
AZS = [(az.name, [n.id for n in az.nodes]) for az in TOPO.azs]
MiB = 1 << 20


def ec_for(oid: str, nodes: list[str], seg: int = MiB) -> dict:
    return {"id": oid, "k": 4, "m": 2, "backend": "isa_l_rs_vand", "seg": seg, "nodes": nodes}


def fragment_file(oid: str, idx: int, node: str, body: bytes, seg: int = MiB) -> bytes:
    """A whole fragment file as a storage node writes it (header + one framed block a segment)."""
    codec = Codec(4, 2)
    head = blocks.file_header(idx, blocks.fragment_info(oid, idx, node, 1_700_000_000_000))
    return head + b"".join(blocks.frame(codec.encode(body[s:s + seg])[idx]) for s in range(0, len(body), seg))


def all_held(ec: dict, size: int) -> dict:
    """Every node answers, holding its fragments at their exact size."""
    p = where.placement(where.FragmentSet("object", size, ec=ec), TOPO, {n: {} for n in ec["nodes"]})
    held: dict = {}
    for f in p.fragments:
        held.setdefault(f.node, {})[f.index] = f.expected_size
    return held


def test_fragment_sets_of_inline_erasure_coded_and_multipart_records():
    inline = where.fragment_sets({"size": 3, "inline": base64.b64encode(b"hi!").decode()})
    assert [(s.label, s.size, s.inline, s.ec) for s in inline] == [("object", 3, b"hi!", None)]
    ec = ec_for("1" * 32, place("1" * 32, AZS, 6))
    assert [(s.label, s.size, s.ec) for s in where.fragment_sets({"size": 5 * MiB, "ec": ec})] == \
        [("object", 5 * MiB, ec)]
    manifest = {"size": 5 * MiB + 2, "parts": [
        {"part": 1, "size": 5 * MiB, "ec": ec},
        {"part": 2, "size": 2, "inline": base64.b64encode(b"ok").decode()}]}
    sets = where.fragment_sets(manifest)
    assert [(s.label, s.size) for s in sets] == [("part 1", 5 * MiB), ("part 2", 2)]
    assert sets[0].ec == ec and sets[1].inline == b"ok" and sets[1].ec is None


def test_every_fragment_at_home_and_whole():
    oid = "ab" * 16
    ec = ec_for(oid, place(oid, AZS, 6))
    size = 3 * MiB + 12345
    p = where.placement(where.FragmentSet("object", size, ec=ec), TOPO, all_held(ec, size))
    assert [f.index for f in p.fragments] == list(range(6))
    assert [f.kind for f in p.fragments] == ["data"] * 4 + ["parity"] * 2
    assert all(f.state == where.OK and not f.handoff for f in p.fragments)
    assert p.full and p.readable and p.segments == 4 and (p.k, p.m) == (4, 2)
    # Two fragments in each AZ: losing any one AZ leaves k = 4.
    for az, nodes in AZS:
        assert sum(f.az == az for f in p.fragments) == 2
        assert all(f.node in nodes for f in p.fragments if f.az == az)


def test_expected_size_is_the_size_of_a_real_fragment_file():
    oid = "cd" * 16
    body = os.urandom(2 * 4096 + 77)
    ec = ec_for(oid, place(oid, AZS, 6), seg=4096)
    p = where.placement(where.FragmentSet("object", len(body), ec=ec), TOPO, {})
    for f in p.fragments:
        assert f.expected_size == len(fragment_file(oid, f.index, f.node, body, seg=4096))


def test_states_unreachable_missing_wrong_size_and_handoff():
    oid = "ef" * 16
    home = place(oid, AZS, 6)
    nodes = list(home)
    az_b = [n.id for n in TOPO.azs[1].nodes]
    # Fragment 0 was written while its home was down: it sits on another node.
    other = next(n for n in TOPO.nodes if n.id not in az_b and n.id != home[0])
    nodes[0] = other.id
    ec = ec_for(oid, nodes)
    held = all_held(ec, MiB)
    for n in az_b:
        held.pop(n, None)                                  # az-b does not answer
    idx_missing, idx_short = [i for i, n in enumerate(nodes) if n not in az_b and i != 0][:2]
    del held[nodes[idx_missing]][idx_missing]
    held[nodes[idx_short]][idx_short] -= 10
    p = where.placement(where.FragmentSet("object", MiB, ec=ec), TOPO, held)
    by = {f.index: f for f in p.fragments}
    assert by[0].handoff and by[0].home == home[0] and by[0].state == where.OK
    assert by[idx_missing].state == where.MISSING and by[idx_missing].size is None
    assert by[idx_short].state == where.WRONG_SIZE and by[idx_short].size == by[idx_short].expected_size - 10
    unreachable = {f.index for f in p.fragments if f.state == where.UNREACHABLE}
    assert unreachable == {i for i, n in enumerate(nodes) if n in az_b}
    assert p.count(where.UNREACHABLE) == len(unreachable)
    assert not p.full
    assert p.readable == (p.count(where.OK) >= 4)
    text = where.table(p)
    assert "(node down)" in text and "MISSING" in text and "WRONG SIZE" in text
    assert f"[handoff; home {home[0]}]" in text


def test_table_has_one_column_per_az_and_a_row_per_fragment_of_the_fullest_az():
    oid = "12" * 16
    ec = ec_for(oid, ["a1", "a2", "a1", "c1", "c2", "b1"])        # az-a holds 3, az-b 1
    p = where.placement(where.FragmentSet("object", MiB, ec=ec), TOPO, all_held(ec, MiB))
    columns, body = where.rows(p)
    assert columns == ["az-a", "az-b", "az-c"]
    assert len(body) == 3
    assert [(f.node, f.index) for f in (row[0] for row in body)] == [("a1", 0), ("a1", 2), ("a2", 1)]
    assert [row[1] and (row[1].node, row[1].index) for row in body] == [("b1", 5), None, None]
    lines = where.table(p, indent="").splitlines()
    assert lines[0].split() == ["az-a", "az-b", "az-c"]
    assert set(lines[1].replace(" ", "")) == {"-"}
    assert lines[2].startswith("a1 #0 data") and "b1 #5 parity" in lines[2] and "c1 #3 data" in lines[2]
    assert len(lines) == 2 + 3


def test_a_node_the_topology_does_not_know_gets_a_column_of_its_own():
    oid = "34" * 16
    ec = ec_for(oid, ["a1", "b1", "c1", "a2", "b2", "x9"])
    p = where.placement(where.FragmentSet("object", 10, ec=ec), TOPO, all_held(ec, 10))
    columns, _ = where.rows(p)
    assert columns == ["az-a", "az-b", "az-c", "?"]
    assert p.fragments[5].az == "?"


def test_an_inline_set_has_no_placement():
    with pytest.raises(ValueError):
        where.placement(where.FragmentSet("object", 2, inline=b"hi"), TOPO, {})


def test_describe_and_human_sizes():
    oid = "56" * 16
    ec = ec_for(oid, place(oid, AZS, 6))
    p = where.placement(where.FragmentSet("part 2", 3 * MiB, ec=ec), TOPO, {})
    assert where.describe(p) == ("part 2: 3.0 MiB (3,145,728 bytes) in 3 segments of up to 1.0 MiB, "
                                 "each coded into 4 data + 2 parity fragments")
    assert [where.human(n) for n in (0, 1023, 1024, 1536, 5 * MiB)] == ["0 B", "1023 B", "1.0 KiB", "1.5 KiB",
                                                                        "5.0 MiB"]


def test_an_inventory_page_from_cursor_before_lists_that_object_first(tmp_path):
    frag = tmp_path / "fragments"
    target = "7f" + "0" * 30
    oids = ["00" * 16, "7e" + "f" * 30, target, "7f" + "0" * 29 + "1", "ff" * 16]
    for o in oids:
        (frag / o[:2]).mkdir(parents=True, exist_ok=True)
        for i in (0, 3, 5):
            (frag / o[:2] / f"{o}.{i}").write_bytes(b"x" * (i + 1))
    rows, _ = audit.list_fragments(frag, audit.cursor_before(target), 6)
    assert [(r[0], r[1], r[2]) for r in rows[:3]] == [(target, 0, 1), (target, 3, 4), (target, 5, 6)]
    assert audit.cursor_before("00" * 16) is None
    rows, _ = audit.list_fragments(frag, audit.cursor_before("00" * 16), 3)
    assert {r[0] for r in rows} == {"00" * 16}
