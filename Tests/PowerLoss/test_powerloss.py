"""The power-failure simulator itself: it drops exactly what was not made durable."""
import os
import subprocess
import sys
import textwrap

import pytest

from petrel_harness.powerloss import PowerLoss


@pytest.fixture
def loss(tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    (root / "kept").write_bytes(b"baseline")
    simulator = PowerLoss(str(root), str(tmp_path / "state"))
    simulator.reset()
    return simulator


def run(loss, script):
    """Runs `script` (Python, in the root directory) with the simulator preloaded."""
    prelude = textwrap.dedent("""
        import os
        def write(name, data, sync=False):
            fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
            os.write(fd, data)
            if sync:
                os.fsync(fd)
            os.close(fd)
        def sync_file(name):
            fd = os.open(name, os.O_RDONLY)
            os.fsync(fd)
            os.close(fd)
        def sync_dir(name="."):
            fd = os.open(name, os.O_RDONLY | os.O_DIRECTORY)
            os.fsync(fd)
            os.close(fd)
    """)
    subprocess.run([sys.executable, "-c", prelude + textwrap.dedent(script)], cwd=loss.root, env=loss.environment(),
                   check=True)


def read(loss, name):
    with open(os.path.join(loss.root, name), "rb") as f:
        return f.read()


def names(loss):
    return sorted(os.listdir(loss.root))


@pytest.mark.parametrize("mode", ["strict", "lenient"])
def test_an_unsynced_write_is_dropped(loss, mode):
    run(loss, """
        write("f", b"one", sync=True)
        sync_dir()
        write("f", b"two")
        write("kept", b"+more")
    """)
    report = loss.restore(mode)
    assert read(loss, "f") == b"one"
    assert read(loss, "kept") == b"baseline"
    assert report.files_shortened == {"f": 3, "kept": 5}


def test_an_unsynced_create_is_dropped_in_strict_mode_and_kept_in_lenient(loss):
    run(loss, """
        write("new", b"data", sync=True)
        write("never-synced", b"data")
    """)
    strict = loss.restore("strict")
    assert names(loss) == ["kept"] and sorted(strict.names_dropped) == ["never-synced", "new"]
    run(loss, """
        write("new", b"data", sync=True)
        write("never-synced", b"data")
    """)
    loss.restore("lenient")
    assert names(loss) == ["kept", "new"] and read(loss, "new") == b"data"


def test_a_synced_name_whose_data_never_was_is_empty(loss):
    run(loss, """
        write("f", b"data")
        sync_dir()
    """)
    loss.restore("strict")
    assert read(loss, "f") == b""


@pytest.mark.parametrize("mode", ["strict", "lenient"])
def test_an_unsynced_rename_is_undone(loss, mode):
    run(loss, """
        write("kept.tmp", b"replacement", sync=True)
        os.rename("kept.tmp", "kept")
    """)
    loss.restore(mode)
    assert read(loss, "kept") == b"baseline", "the rename over it was never made durable"
    # Lenient: the temporary file's own fsync made its name durable, as on ext4.
    assert names(loss) == (["kept"] if mode == "strict" else ["kept", "kept.tmp"])


def test_a_rename_covered_by_a_directory_fsync_survives(loss):
    run(loss, """
        write("kept.tmp", b"replacement", sync=True)
        os.rename("kept.tmp", "kept")
        sync_dir()
    """)
    loss.restore("strict")
    assert names(loss) == ["kept"] and read(loss, "kept") == b"replacement"


def test_an_unsynced_delete_is_undone_and_a_synced_one_is_not(loss):
    run(loss, """
        write("a", b"A", sync=True)
        write("b", b"B", sync=True)
        sync_dir()
        os.unlink("a")
        os.unlink("b")
        sync_dir()
        os.unlink("kept")
    """)
    loss.restore("strict")
    assert names(loss) == ["kept"] and read(loss, "kept") == b"baseline"


def test_a_reused_inode_is_not_taken_for_the_file_that_had_it(loss):
    # The old file's inode is freed and, on most file systems, reused at once by the new file.
    run(loss, """
        os.unlink("kept")
        write("fresh", b"new content", sync=True)
    """)
    loss.restore("strict")
    assert names(loss) == ["kept"] and read(loss, "kept") == b"baseline"


def test_a_new_directory_needs_its_parent_synced(loss):
    run(loss, """
        os.mkdir("d")
        write("d/f", b"data", sync=True)
        sync_dir("d")
    """)
    loss.restore("strict")
    assert names(loss) == ["kept"]
    run(loss, """
        os.mkdir("d")
        write("d/f", b"data", sync=True)
        sync_dir("d")
        sync_dir()
    """)
    loss.restore("strict")
    assert names(loss) == ["d", "kept"] and read(loss, "d/f") == b"data"


def test_a_directory_renamed_after_its_parent_was_synced_comes_back_under_the_old_name(loss):
    run(loss, """
        os.mkdir("orders-0")
        write("orders-0/seg", b"records", sync=True)
        sync_dir("orders-0")
        sync_dir()
        os.rename("orders-0", "orders-0.x-delete")
    """)
    loss.restore("strict")
    assert names(loss) == ["kept", "orders-0"] and read(loss, "orders-0/seg") == b"records"
