import subprocess
import sys


def test_no_command_prints_help_and_exits_2(cli):
    r = cli()
    assert r.returncode == 2
    assert "usage: cnnkit" in r.stdout


def test_unknown_command_is_a_usage_error(cli):
    r = cli("no-such-command")
    assert r.returncode == 2
    assert "invalid choice" in r.stderr
    assert "Traceback" not in r.stderr


def test_import_cnnkit_does_not_import_torch_or_matplotlib():
    code = (
        "import sys, cnnkit, cnnkit.cli.main; cnnkit.cli.main.build_parser();"
        "print(sorted(m for m in ('torch', 'matplotlib', 'scipy') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_atomic_path_gives_normal_permissions(tmp_path):
    import os

    from cnnkit.core.files import atomic_write_text

    target = tmp_path / "out.txt"
    atomic_write_text(target, "x")
    umask = os.umask(0)
    os.umask(umask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~umask


def test_atomic_path_leaves_nothing_on_error(tmp_path):
    import pytest

    from cnnkit.core.files import atomic_path

    target = tmp_path / "out.txt"
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("interrupted")
    assert list(tmp_path.iterdir()) == []
