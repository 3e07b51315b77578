"""The results folder written from cells: every file, the HTML well-formed, offline and escaped."""

from __future__ import annotations

import hashlib
import json
import math
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest
from synthetic_cells import make_cells, write_cells

from llm_marl.baselines.cells import CellError
from llm_marl.baselines.results import gaps, rebuild_results, write_results
from llm_marl.baselines.results_table import results_table
from llm_marl.baselines.run_watch import RunWarning

METHODS = ["magrpo", "grpo", "parallel"]
PNG = b"\x89PNG\r\n\x1a\n"
_VOID = {"meta", "br", "img", "hr", "link", "input"}


class _Checker(HTMLParser):
    """Fails on a closing tag that does not close the innermost open one; collects the text,
    the tags and every URL the page would load."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.tags: list[str] = []
        self.urls: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.urls += [v or "" for k, v in attrs if k in {"src", "href"}]
        if tag not in _VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        assert self.stack and self.stack[-1] == tag, f"</{tag}> closes {self.stack[-1:]}"
        self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def _parse(page: str) -> _Checker:
    checker = _Checker()
    checker.feed(page)
    checker.close()
    assert checker.stack == []
    return checker


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A writing results folder (grpo missing seed 2) with a cross-play and a data file."""
    folder = tmp_path_factory.mktemp("results")
    cells = make_cells("writing", seeds=3, missing=("grpo", 2))
    cells[-1]["tasks"][0]["metrics"]["coherence"] = math.nan  # parallel seed 2: nothing scored
    write_cells(folder, cells)
    (folder / "crossplay.json").write_text(
        json.dumps(
            {
                "method": "magrpo",
                "metric": "total_reward",
                "row_agent": "summary_0",
                "col_agent": "summary_1",
                "sources": ["base", "seed0"],
                "matrix": [[0.1, 0.2], [0.3, 0.4]],
            }
        )
    )
    data = folder / "test.jsonl"
    data.write_text('{"id": 1}\n')
    with pytest.warns(RunWarning, match="grpo has no cell for seed 2: its row holds 2 of 3"):
        return write_results(
            folder,
            cells,
            table="writing",
            methods=METHODS,
            config={"seeds": 3},
            data_files=[data],
            labels={"split": "test"},
            resamples=500,
        )


def _no_nan(name: str) -> None:
    raise AssertionError(f"{name} is not JSON")


def test_every_file_is_written(written: dict[str, Path]) -> None:
    assert sorted(written) == [
        "plot.png",
        "report.html",
        "run_card.json",
        "run_card.md",
        "table.json",
        "table.md",
        "tasks.jsonl",
    ]
    assert written["plot.png"].read_bytes().startswith(PNG)
    assert "| grpo | trained (single) | 2 of 3 |" in written["table.md"].read_text()
    assert json.loads(written["table.json"].read_text())["labels"]["split"] == "test"
    lines = written["tasks.jsonl"].read_text().splitlines()
    rows = [json.loads(line, parse_constant=_no_nan) for line in lines]  # strict JSON
    assert len(rows) == 8 * 4  # 8 cells, 4 tasks each
    assert rows[-4]["coherence"] is None  # NaN written as null
    assert set(rows[0]) >= {"method", "seed", "task_id", "total_reward", "latency_s"}


def test_the_html_is_well_formed_self_contained_and_shows_the_table(
    written: dict[str, Path],
) -> None:
    page = written["report.html"].read_text()
    checker = _parse(page)
    assert "table" in checker.tags and "script" not in checker.tags
    assert checker.urls and all(u.startswith("data:image/png;base64,") for u in checker.urls)
    text = " ".join(checker.text)
    for expected in (
        "magrpo",
        "trained (single)",
        "2 of 3",
        "vs magrpo (total reward)",
        "Cross-play",
        "summary_0 \\ summary_1",
        "Sample answers",
        "Run card",
    ):
        assert expected in text
    assert "Contribution" not in text  # no contribution.json was given
    assert "reward terms: total_reward 0.6" in text  # magrpo's first task (offset 0.5)


def test_answers_are_escaped(written: dict[str, Path]) -> None:
    page = written["report.html"].read_text()
    assert "<script>" not in page
    assert "&lt;script&gt;alert(&#x27;parallel&#x27;)&lt;/script&gt; &amp; more" in page
    assert "<script>alert('parallel')</script> & more" in " ".join(_parse(page).text)


def test_the_run_card_has_its_parts(written: dict[str, Path]) -> None:
    card = json.loads(written["run_card.json"].read_text())
    assert set(card) == {"config", "data", "model", "packages", "git", "machine"}
    assert card["config"] == {"seeds": 3} and card["model"] is None
    assert list(card["data"].values()) == [hashlib.sha256(b'{"id": 1}\n').hexdigest()]
    assert set(card["packages"]) >= {"llm-marl", "numpy", "pettingzoo", "gymnasium", "torch"}
    assert set(card["machine"]) >= {"platform", "cpu", "cores", "ram_gb", "torch_threads", "gpu"}
    assert "# Run card" in written["run_card.md"].read_text()


def test_a_contribution_file_is_rendered_and_the_folder_rebuilt(tmp_path: Path) -> None:
    write_cells(tmp_path, make_cells("coding", seeds=2))
    (tmp_path / "contribution.json").write_text(
        json.dumps(
            {
                "method": "magrpo",
                "metric": "pass@1",
                "full": 0.5,
                "without": {"helper_0": {"empty": 0.1, "base": 0.3}, "main_0": {"empty": 0.0}},
            }
        )
    )
    paths = rebuild_results(tmp_path, labels={"split": "test"})
    text = " ".join(_parse(paths["report.html"].read_text()).text)
    assert "Contribution of each agent" in text and "by empty" in text
    assert "| pass@1 | pass@3 |" in paths["table.md"].read_text()


PAIRS = "(seed, task) pairs with magrpo: the paired test uses those only"


def test_gaps_name_missing_seeds_and_unshared_tasks() -> None:
    cells = make_cells("writing", seeds=2, missing=("grpo", 1))
    cells[0]["tasks"].pop()  # magrpo, seed 0: one task fewer than the others
    assert gaps(results_table(cells, table="writing", methods=METHODS, resamples=50), cells) == [
        "grpo has no cell for seed 1: its row holds 1 of 2 seeds",
        f"grpo shares 3 of its 4 {PAIRS}",
        f"parallel shares 7 of its 8 {PAIRS}",
    ]


def test_a_malformed_extra_file_names_its_key(tmp_path: Path) -> None:
    write_cells(tmp_path, make_cells("writing", seeds=1))
    (tmp_path / "crossplay.json").write_text(json.dumps({"method": "magrpo"}))
    with pytest.raises(CellError, match=r"crossplay\.json: no key 'metric'"):
        rebuild_results(tmp_path)


NO_TORCH = """
import json, sys, warnings
from pathlib import Path
sys.modules["matplotlib"] = None  # as if it were not installed: import fails
sys.path.insert(0, {tests!r})
from synthetic_cells import make_cells
from llm_marl.baselines.results import write_results
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    paths = write_results(Path({out!r}), make_cells(seeds=2), table="writing",
                          methods=["magrpo", "grpo", "parallel"], config={{}}, resamples=50)
heavy = sorted({{m.split('.')[0] for m in sys.modules}} & {{'torch', 'transformers'}})
print(json.dumps([sorted(paths), [str(w.message).split(":")[0] for w in caught], heavy]))
"""


def test_the_report_is_written_without_torch_or_matplotlib(tmp_path: Path) -> None:
    """Everything but the plot, which is left out with a warning."""
    code = NO_TORCH.format(tests=str(Path(__file__).parent), out=str(tmp_path))
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    written, warned, heavy = json.loads(done.stdout)
    assert written == [
        "report.html", "run_card.json", "run_card.md", "table.json", "table.md", "tasks.jsonl"
    ]  # fmt: skip
    assert warned == ["matplotlib is not installed"]
    assert heavy == []
    assert "data:image/png" not in (tmp_path / "report.html").read_text()
