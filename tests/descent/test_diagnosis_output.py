"""The diagnosis in ``descent show`` and ``descent compare``, against the real api (in process, on
a migrated SQLite file): a run whose loss runs away is named with the api's evidence and
suggestion, a healthy one reads "no problems seen"."""

from __future__ import annotations

import json

from descent.commands import compare, show
from tests.descent.test_output import _command, _run, api  # noqa: F401 - the fixture

# one point an epoch (epoch = step): the loss rises in epochs 3, 4 and 5, ×2.4 from epoch 2
DIVERGING = {"train/loss": [1.0, 0.5, 0.6, 0.8, 1.2], "lr": [0.1] * 5}
HEALTHY = {"train/loss": [1.0, 0.5, 0.25, 0.125], "lr": [0.1] * 4}


def test_show_prints_each_finding_with_its_evidence_and_suggestion(api, capsys):  # noqa: F811
    client, post = api
    eid = _run(client, post, "runaway", DIVERGING)
    lines = _command(show.show_arguments, show.show, client, [str(eid)], capsys).splitlines()
    start = lines.index("diagnosis:")
    assert lines[start + 1] == ("  error: diverging at epoch 5: train loss rose for 3 epochs in a row, from 0.5 "
                                "(epoch 2) to 1.2 (×2.4)")
    assert lines[start + 2].startswith("    try: lower the LR")


def test_show_says_when_no_rule_fired(api, capsys):  # noqa: F811
    client, post = api
    eid = _run(client, post, "fine", HEALTHY)
    out = _command(show.show_arguments, show.show, client, [str(eid)], capsys)
    assert "diagnosis:   no problems seen (4 epochs read)" in out.splitlines()


def test_compare_names_each_runs_findings_in_a_row_and_in_its_json(api, capsys):  # noqa: F811
    client, post = api
    a, b = _run(client, post, "runaway", DIVERGING), _run(client, post, "fine", HEALTHY)
    out = _command(compare.arguments, compare.compare, client, [str(a), str(b), "--diagnosis"], capsys)
    row = next(line for line in out.splitlines() if line.startswith("diagnosis"))
    assert row.split() == ["diagnosis", "diverging@5", "ok"]
    plain = _command(compare.arguments, compare.compare, client, [str(a), str(b)], capsys)
    assert "diagnosis" not in plain
    summary = json.loads(_command(compare.arguments, compare.compare, client, [str(a), str(b), "--json"], capsys))
    assert [r["diagnosis"] for r in summary] == [["diverging"], []]
