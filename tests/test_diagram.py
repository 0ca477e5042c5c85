"""The picture of the server's checks (notebooks/images/server_checks.svg) is generated, current,
accessible, and places the article's requests where the live server stops them."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from helpers import diagram, verdicts

NS = "{http://www.w3.org/2000/svg}"


def test_the_committed_svg_is_what_the_command_writes() -> None:
    assert diagram.OUTPUT.read_text(encoding="utf-8") == diagram.render(), (
        "notebooks/images/server_checks.svg is stale: regenerate it with "
        "`python -m helpers.diagram --write notebooks/images/server_checks.svg`")


def test_the_svg_is_accessible_and_draws_its_own_background() -> None:
    root = ET.fromstring(diagram.OUTPUT.read_text(encoding="utf-8"))
    assert root.get("role") == "img" and root.get("aria-labelledby") == "title desc"
    assert "log-metric" in root.find(NS + "title").text
    desc = root.find(NS + "desc").text
    assert "Content-Type (mlflow/server/validation.py)" in desc and "1a stops here" in desc
    style = root.find(NS + "style").text
    assert "prefers-color-scheme: dark" in style  # and an opaque .bg rect for any page colour
    assert root.find(NS + "rect").get("class") == "bg"
    sizes = [int(n) for n in re.findall(r"font:(?:600 )?(\d+)px", style)]
    assert min(sizes) >= 12


def test_the_steps_come_in_the_servers_order_with_their_files() -> None:
    steps = diagram.steps()
    assert [s.title for s in steps] == ["Security", "Route", "Content-Type", "JSON", "Protobuf",
                                       "Handler schema", "Store", "State"]
    files = {s.title: s.files() for s in steps}
    assert files["Content-Type"] == "mlflow/server/validation.py"
    assert "mlflow/utils/validation.py" in files["Store"]  # from the model's store rule
    assert files["State"] == "mlflow/store/tracking/sqlalchemy_store.py"  # the state rules'


def test_a_step_naming_code_mlflow_lacks_is_refused() -> None:
    import pytest

    with pytest.raises(LookupError):
        diagram._exists("server/handlers.py::_validate_request_json")  # not in 3.17.2


def test_each_request_stops_where_the_live_server_answers(server, fresh_run) -> None:
    """Placement comes from preflight; the live answer must carry the status and message drawn."""
    steps, placed = diagram.article_placements()
    planned = verdicts.article_requests(fresh_run["run_id"])
    by_label = {p.label: p for p in placed}
    for label, p in planned.items():
        live = verdicts.send_planned(p)
        drawn = by_label[label].answer
        assert drawn.startswith(str(live.status)), (label, drawn, live.status)
        assert drawn.split(": ", 1)[1] in live.message, (label, drawn, live.message)
    titles = {p.label: steps[p.step].title for p in placed}
    assert titles["1a"] == "Content-Type" and titles["2a"] == "Handler schema"
    assert titles["1b + timestamp"] == "State"
