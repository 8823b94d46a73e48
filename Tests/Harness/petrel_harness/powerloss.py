"""A simulated power failure for one directory tree.

A process started with `PowerLoss.environment()` runs with libpowerloss.so preloaded
(Tests/PowerLoss/powerloss.c, built to .build/powerloss/ in the repository), which records what each
fsync made durable. After the process is killed, `restore()` rolls the tree back to exactly that:

  * a file's content is what its last fsync or fdatasync saw (a file never synced is empty);
  * strict mode (POSIX): a name exists only if an fsync of its directory saw it, so an unsynced create,
    rename or delete is undone;
  * lenient mode (what ext4 does): an fsync of a file also makes its name, and its parents' names,
    durable.

Then it takes the restored tree as the new durable state, ready for the next run.

    loss = PowerLoss(data_dir, state_dir)
    loss.reset()                             # what is there now counts as durable
    process = subprocess.Popen(cmd, env=loss.environment())
    ... ; process.kill()
    report = loss.restore("strict")          # what the power failure took
"""
import os
import shutil
import subprocess

SOURCE_IN_REPOSITORY = os.path.join("Tests", "PowerLoss", "powerloss.c")


def repository_root():
    """The Petrel checkout: $PETREL_ROOT if set, else the nearest folder above this module that has
    Package.swift and the simulator's C source (an editable install leaves this module in the
    checkout). None if neither finds one."""
    if os.environ.get("PETREL_ROOT"):
        return os.path.realpath(os.environ["PETREL_ROOT"])
    folder = os.path.dirname(os.path.realpath(__file__))
    while True:
        if os.path.isfile(os.path.join(folder, "Package.swift")) and \
                os.path.isfile(os.path.join(folder, SOURCE_IN_REPOSITORY)):
            return folder
        parent = os.path.dirname(folder)
        if parent == folder:
            return None
        folder = parent


ROOT = repository_root()
SOURCE = ROOT and os.path.join(ROOT, SOURCE_IN_REPOSITORY)
LIBRARY = ROOT and os.path.join(ROOT, ".build", "powerloss", "libpowerloss.so")


def build_library():
    """Compiles the preload library if it is missing or older than its source; returns its path."""
    if ROOT is None:
        raise RuntimeError(f"{__file__} is not inside a Petrel checkout: set PETREL_ROOT to one, or install "
                           "the harness in editable mode (scripts/install-test-deps.sh does)")
    if not os.path.exists(SOURCE):
        raise RuntimeError(f"the simulator's source {SOURCE} is missing (is PETREL_ROOT a Petrel checkout?)")
    if not os.path.exists(LIBRARY) or os.path.getmtime(LIBRARY) < os.path.getmtime(SOURCE):
        os.makedirs(os.path.dirname(LIBRARY), exist_ok=True)
        subprocess.run(["cc", "-O2", "-Wall", "-Werror", "-Wno-format-truncation", "-shared", "-fPIC", "-o", LIBRARY, SOURCE, "-ldl", "-lpthread"],
                       check=True)
    return LIBRARY


class Report:
    """What one power failure took: names gone, files cut short, names back from the dead."""

    def __init__(self):
        self.names_dropped = []
        self.files_shortened = {}  # path -> bytes lost
        self.names_restored = []

    @property
    def bytes_dropped(self):
        return sum(self.files_shortened.values())

    def __repr__(self):
        return (f"Report(names_dropped={self.names_dropped}, files_shortened={self.files_shortened}, "
                f"names_restored={self.names_restored})")


class PowerLoss:
    def __init__(self, root, state):
        self.root = os.path.realpath(root)
        self.state = os.path.realpath(state)
        self.library = build_library()

    def environment(self, base=None):
        env = dict(os.environ if base is None else base)
        env["LD_PRELOAD"] = self.library
        env["POWERLOSS_ROOT"] = self.root
        env["POWERLOSS_STATE"] = self.state
        return env

    def reset(self):
        """Takes the tree as it is now as durable: a fresh journal and a copy of every file."""
        shutil.rmtree(self.state, ignore_errors=True)
        os.makedirs(os.path.join(self.state, "content"))
        lines = [f"R\tb{os.lstat(self.root).st_ino}\n"]
        for directory, folders, files in os.walk(self.root):
            entries = []
            for name in sorted(folders + files):
                info = os.lstat(os.path.join(directory, name))
                kind = "d" if os.path.isdir(os.path.join(directory, name)) else "f"
                entries.append(f"{name}/b{info.st_ino}/{kind}")
                if kind == "f":
                    shutil.copyfile(os.path.join(directory, name), os.path.join(self.state, "content", f"b{info.st_ino}"))
            lines.append("\t".join([f"D\tb{os.lstat(directory).st_ino}", *entries]) + "\n")
        with open(os.path.join(self.state, "journal"), "w") as journal:
            journal.writelines(lines)

    def durable_listings(self, mode):
        """Directory identity -> {name: (identity, kind)}, as the journal says, and the root's identity."""
        assert mode in ("strict", "lenient")
        listings, root = {}, None
        with open(os.path.join(self.state, "journal")) as journal:
            for line in journal:
                if not line.endswith("\n"):
                    break  # cut off by the kill: that fsync never returned
                fields = line[:-1].split("\t")
                if fields[0] == "R":
                    root = fields[1]
                elif fields[0] == "D":
                    listing = {}
                    for entry in fields[2:]:
                        name, identity, kind = entry.rsplit("/", 2)
                        listing[name] = (identity, kind)
                    listings[fields[1]] = listing
                elif fields[0] == "N" and mode == "lenient":
                    listings.setdefault(fields[1], {})[fields[2]] = (fields[3], fields[4])
        return listings, root

    def restore(self, mode="strict"):
        """Rolls the tree back to what was durable, returns a Report, and resets for the next run."""
        listings, root = self.durable_listings(mode)
        rebuilt = self.root + ".powerloss-new"
        shutil.rmtree(rebuilt, ignore_errors=True)

        def build(identity, target, depth=0):
            os.mkdir(target)
            for name, (child, kind) in listings.get(identity, {}).items():
                path = os.path.join(target, name)
                if kind == "d":
                    if depth < 64:
                        build(child, path, depth + 1)
                else:
                    content = os.path.join(self.state, "content", child)
                    if os.path.exists(content):
                        shutil.copyfile(content, path)
                    else:
                        open(path, "wb").close()

        build(root, rebuilt)
        report = compare(self.root, rebuilt)
        old = self.root + ".powerloss-old"
        shutil.rmtree(old, ignore_errors=True)
        os.rename(self.root, old)
        os.rename(rebuilt, self.root)
        shutil.rmtree(old)
        self.reset()
        return report


def tree(root):
    found = {}
    for directory, folders, files in os.walk(root):
        for name in folders:
            found[os.path.relpath(os.path.join(directory, name), root) + "/"] = None
        for name in files:
            path = os.path.join(directory, name)
            found[os.path.relpath(path, root)] = os.path.getsize(path)
    return found


def compare(before_root, after_root):
    before, after = tree(before_root), tree(after_root)
    report = Report()
    for path, size in before.items():
        if path not in after:
            report.names_dropped.append(path)
        elif size is not None and after[path] is not None and after[path] < size:
            report.files_shortened[path] = size - after[path]
    report.names_restored = [path for path in after if path not in before]
    return report
