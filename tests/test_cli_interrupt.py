"""Ctrl-C that a command does not handle itself ends ``utrans`` with one line and exit 130."""

import sys
import types

import utrans.cli as cli


def test_ctrl_c_gives_one_line_and_exit_130(monkeypatch, capsys):
    module = types.ModuleType("interrupting_command")

    def run(argv):
        raise KeyboardInterrupt

    module.run = run
    monkeypatch.setitem(sys.modules, "interrupting_command", module)
    monkeypatch.setitem(cli.COMMANDS, "stream", "interrupting_command:run")
    assert cli.console(["stream", "--seedlink", "localhost:1"]) == 130
    err = capsys.readouterr().err
    assert err == "utrans stream: interrupted\n"
