"""`make bench` runs on the code as it is: its diff and publish sections at a small size (ratios are the bench's
business, not a test's; this only proves the bench's calls into the bundle still work and its checks hold)."""

from __future__ import annotations

import pytest

from tests.conftest import PROJECT_DIR


@pytest.fixture(autouse=True)
def bench_on_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(PROJECT_DIR / "bench"))  # the bench imports its sections as `diff`, `publish`


def test_the_publish_section_publishes_and_retries(capsys: pytest.CaptureFixture[str]) -> None:
    import publish

    floor, seconds = publish._bench_size(20_000)
    assert floor > 0 and seconds > 0
    assert "retry (no-op)" in capsys.readouterr().out


def test_the_diff_section_checks_its_report_against_the_construction(capsys: pytest.CaptureFixture[str]) -> None:
    import diff

    diff._bench_size(20_000)
    out = capsys.readouterr().out
    assert "report matches construction" in out and "REPORT DIFFERS" not in out


def test_the_scale_section_renders_and_audits_a_generated_project(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import generated
    import run

    monkeypatch.setattr(generated, "CHAINS", 2)
    monkeypatch.setattr(generated, "STEPS", 3)
    monkeypatch.setattr(run, "REPEATS", 1)
    generated.bench_generated()
    out = capsys.readouterr().out
    assert "generated project: 6 models" in out
    assert "audit  7 unchanged relations (unchanged)" in out  # 6 models and the seed, all equal to production
    assert "warehouse statements" in out
