"""The command-line layer: the dispatcher, --version, every subcommand's --help, and the shared flags."""
import argparse
import subprocess
import sys

import pytest

import alexnet_book
from alexnet_book import commands
from alexnet_book.commands import common


def test_version_and_usage(capsys):
    assert commands.main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"alexnet-book {alexnet_book.__version__}"
    assert commands.main([]) == 0
    out = capsys.readouterr().out
    assert all(f"  {name} " in out for name in commands.SUBCOMMANDS)


def test_unknown_command_is_one_line_and_status_2(capsys):
    assert commands.main(["trian"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "'trian'" in err and "train" in err


@pytest.mark.parametrize("name", sorted(commands.SUBCOMMANDS))
def test_every_subcommand_has_a_main_and_a_help(name, capsys):
    module = commands.command(name)
    assert callable(module.main)
    with pytest.raises(SystemExit) as exit_:
        module.main(["--help"])
    assert exit_.value.code == 0
    assert "usage:" in capsys.readouterr().out


def test_train_help_says_that_the_same_command_resumes(capsys):
    with pytest.raises(SystemExit):
        commands.command("train").main(["--help"])
    out = " ".join(capsys.readouterr().out.split()).lower()
    assert "resume" in out


def test_the_console_script_and_python_m_reach_the_dispatcher():
    run = subprocess.run([sys.executable, "-m", "alexnet_book.cli", "--version"], capture_output=True, text=True)
    assert run.returncode == 0 and run.stdout.startswith("alexnet-book ")


def test_shared_flags_accept_the_old_spellings():
    p = argparse.ArgumentParser()
    common.add_quiet(p)
    common.add_runs(p)
    common.add_device(p)
    common.add_only(p, ("a", "b", "c"))
    args = p.parse_args(["--no-progress", "--out-dir", "x", "--device", "cuda:1", "--only", "a,b", "c"])
    assert args.quiet and args.runs == "x" and args.device == "cuda:1"
    assert common.only(args.only) == ["a", "b", "c"]
    assert p.parse_args(["--store", "y"]).runs == "y"
    assert common.only(p.parse_args([]).only) is None


@pytest.mark.parametrize("argv", [["--device", "gpu"], ["--only", "a,z"]])
def test_shared_flags_refuse_unknown_values_in_one_line(argv, capsys):
    p = argparse.ArgumentParser()
    common.add_device(p)
    common.add_only(p, ("a", "b"))
    with pytest.raises(SystemExit) as exit_:
        p.parse_args(argv)
    assert exit_.value.code == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert "error:" in last and argv[1].split(",")[-1] in last
