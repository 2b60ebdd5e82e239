"""``descent worker`` argument handling (the processes themselves are tested in test_celery_worker)."""

import pytest

from descent.commands.worker import celery_argv, parse_gpus


@pytest.mark.parametrize(
    ("text", "cards"),
    [("0", ["0"]), ("0,1", ["0", "1"]), (" 2, 3 ,", ["2", "3"])],
)
def test_gpu_lists_parse(text, cards):
    assert parse_gpus(text) == cards


@pytest.mark.parametrize(("visible", "cards"), [(1, ["0"]), (4, ["0", "1", "2", "3"])])
def test_all_means_every_visible_card(visible, cards):
    assert parse_gpus("all", visible=visible) == cards


def test_all_without_a_gpu_says_what_to_do():
    with pytest.raises(ValueError, match="--gpus all: no GPU .*--queue cpu"):
        parse_gpus("all", visible=0)


@pytest.mark.parametrize(("text", "problem"), [("", "expected"), ("a,1", "expected"), ("0,0", "twice"), ("-1", "expected")])
def test_bad_gpu_lists_are_rejected_naming_the_option(text, problem):
    with pytest.raises(ValueError, match=f"--gpus: .*{problem}"):
        parse_gpus(text)


@pytest.mark.parametrize(
    ("concurrency", "pool"),
    [(1, ["--pool", "solo"]), (3, ["--pool", "prefork", "--concurrency", "3"])],
)
def test_one_training_at_a_time_uses_the_solo_pool(concurrency, pool):
    argv = celery_argv("cpu", concurrency, "cpu@host", "INFO")
    assert argv[argv.index("-Q") + 1] == "cpu"
    assert argv[argv.index("--pool"):argv.index("--pool") + len(pool)] == pool
