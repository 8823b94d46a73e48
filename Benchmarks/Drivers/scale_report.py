"""The report of bench-scale.py: each point's ratios (Petrel against tansu, and against its own first
point), the 1,000-partition target, the Markdown table, the CSV and the PNG plot (matplotlib, installed
with pip if missing). Kept apart from the measuring, so a saved run can be re-plotted without it
(`bench-scale.py --replot`).
"""
import csv
import os
import subprocess
import sys

TARGET = 0.70  # Petrel's produce rate on 1,000 partitions of one topic / on one partition
TARGET_PARTITIONS = 1000
SERIES = ("one-topic", "one-topic-sticky", "many-topics", "connections")
SERIES_TITLE = {"one-topic": "one topic, records spread", "one-topic-sticky": "one topic, sticky partitioner",
                "many-topics": "10 partitions per topic", "connections": "producer connections"}


def one_line(error, limit=300):
    text = " ".join(str(error).split())
    return text if len(text) <= limit else text[:limit - 1] + "…"


def ratios(rows):
    """Adds Petrel/tansu (rate), tansu/Petrel (CPU per record) and each broker's rate against its own
    first point of the series: one partition, or one connection (for many-topics, whose first point
    has 10 partitions, the one-topic series' single partition)."""
    def first_of(row):
        return ("one-topic" if row["series"] == "many-topics" else row["series"], row["operation"])
    base = {}
    for row in rows:
        for name in ("petrel", "tansu"):
            if row.get(name) and row["series"] != "many-topics" and (row["partitions"] if row["series"] != "connections"
                                                                     else row["connections"]) == 1:
                base.setdefault((first_of(row), name), row[name]["records_per_s"])
    for row in rows:
        p, t = row.get("petrel"), row.get("tansu")
        row["rate_petrel_over_tansu"] = round(p["records_per_s"] / t["records_per_s"], 3) if p and t else None
        row["cpu_tansu_over_petrel"] = (round(t["broker_cpu_us_per_record"] / p["broker_cpu_us_per_record"], 3)
                                        if p and t and p["broker_cpu_us_per_record"] else None)
        for name in ("petrel", "tansu"):
            first = base.get((first_of(row), name))
            row[f"{name}_vs_first"] = round(row[name]["records_per_s"] / first, 3) if row.get(name) and first else None
    return rows


def target_check(rows, series):
    """Petrel's produce rate on 1,000 partitions of one topic against one partition, in `series`."""
    one = {r["partitions"]: r for r in rows if r["series"] == series and r["operation"] == "produce"}
    if 1 not in one or TARGET_PARTITIONS not in one:
        return None
    first, at = one[1].get("petrel"), one[TARGET_PARTITIONS].get("petrel")
    if not first or not at:
        return {"series": series, "met": False, "ratio": None, "note": "a point failed"}
    ratio = at["records_per_s"] / first["records_per_s"]
    tansu_first, tansu_at = one[1].get("tansu"), one[TARGET_PARTITIONS].get("tansu")
    return {"series": series, "met": ratio >= TARGET, "ratio": round(ratio, 3), "target": TARGET,
            "single_partition": first["records_per_s"], "at_1000": at["records_per_s"],
            "tansu_ratio": round(tansu_at["records_per_s"] / tansu_first["records_per_s"], 3) if tansu_first and tansu_at else None}


def render(rows):
    def cell(row, name, field, fmt):
        m = row.get(name)
        return "failed" if not m else fmt(m[field])

    def ratio(value):
        return "" if value is None else f"{value:.2f}×"
    out = ["| Series | Partitions | Topics | Producers | Op | Petrel records/s | Petrel MB/s | Petrel CPU µs/record "
           "| tansu records/s | tansu MB/s | tansu CPU µs/record | Petrel / tansu, rate | tansu / Petrel, CPU per record "
           "| Petrel vs its first point | records per batch | generator cores (Petrel run) "
           "| idle CPU, Petrel / tansu, cores | errors |",
           "|---|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for row in rows:
        errors = "; ".join(f"{NAMES[name]}: {one_line(row[f'{name}_error'], 160)}" for name in ("petrel", "tansu")
                           if row.get(f"{name}_error"))
        if row.get("swift_builds_running"):
            errors = (errors + "; " if errors else "") + "a Swift build ran meanwhile"
        out.append(" | ".join([
            f"| {SERIES_TITLE[row['series']]}", f"{row['partitions']:,}", f"{row['topics']:,}", str(row["connections"]),
            row["operation"],
            cell(row, "petrel", "records_per_s", lambda v: f"{v:,}"), cell(row, "petrel", "mb_per_s", lambda v: f"{v:.1f}"),
            cell(row, "petrel", "broker_cpu_us_per_record", lambda v: f"{v:.2f}"),
            cell(row, "tansu", "records_per_s", lambda v: f"{v:,}") if "tansu" in row else "",
            cell(row, "tansu", "mb_per_s", lambda v: f"{v:.1f}") if "tansu" in row else "",
            cell(row, "tansu", "broker_cpu_us_per_record", lambda v: f"{v:.2f}") if "tansu" in row else "",
            ratio(row["rate_petrel_over_tansu"]), ratio(row["cpu_tansu_over_petrel"]), ratio(row["petrel_vs_first"]),
            "" if row.get("records_per_batch") is None else f"{row['records_per_batch']:,}",
            cell(row, "petrel", "generator_cores", lambda v: f"{v:.2f}"),
            " / ".join("–" if row.get(f"{name}_idle_cores") is None else f"{row[f'{name}_idle_cores']:.3f}"
                       for name in ("petrel", "tansu") if f"{name}_idle_cores" in row) if row["operation"] == "produce" else "",
            errors.replace("|", "/") + " |"]))
    return "\n".join(out)


CSV_FIELDS = ["series", "partitions", "topics", "partitions_per_topic", "connections", "operation", "records_per_run",
              "record_bytes"]
CSV_MEASURES = ["records_per_s", "mb_per_s", "broker_cpu_us_per_record", "broker_cpu_s", "wall_s", "generator_cores",
                "other_cores"]


def write_csv(path, rows):
    header = CSV_FIELDS + [f"{name}_{m}" for name in ("petrel", "tansu") for m in CSV_MEASURES] + [
        "petrel_error", "tansu_error", "rate_petrel_over_tansu", "cpu_tansu_over_petrel", "petrel_vs_first",
        "tansu_vs_first", "records_per_batch", "petrel_idle_cores", "tansu_idle_cores", "petrel_create_s",
        "tansu_create_s", "petrel_busy_after_create_s", "tansu_busy_after_create_s", "swift_builds_running"]
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        for row in rows:
            values = [row[k] for k in CSV_FIELDS]
            for name in ("petrel", "tansu"):
                values += [(row.get(name) or {}).get(m, "") for m in CSV_MEASURES]
            values += [row.get("petrel_error") or "", row.get("tansu_error") or "", row.get("rate_petrel_over_tansu") or "",
                       row.get("cpu_tansu_over_petrel") or "", row.get("petrel_vs_first") or "",
                       row.get("tansu_vs_first") or "", row.get("records_per_batch") or "",
                       row.get("petrel_idle_cores", ""), row.get("tansu_idle_cores", ""),
                       row.get("petrel_create_s", ""), row.get("tansu_create_s", ""),
                       row.get("petrel_busy_after_create_s", ""), row.get("tansu_busy_after_create_s", ""),
                       " ".join(row.get("swift_builds_running") or [])]
            writer.writerow(values)


def ensure_matplotlib():
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        print("installing matplotlib (pip) for the plot", flush=True)
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "matplotlib"], check=True, timeout=600)
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


COLORS = {"petrel": "#1f77b4", "tansu": "#ff7f0e"}
NAMES = {"petrel": "Petrel", "tansu": "tansu"}


def plot(path, rows, meta):
    plt = ensure_matplotlib()
    fig, axes = plt.subplots(2, 2, figsize=(13, 9.5))
    (produce_ax, consume_ax), (cpu_ax, conn_ax) = axes

    from matplotlib.transforms import blended_transform_factory
    marked = set()

    def curve(ax, series, operation, name, field, scale=1.0, style="-", marker="o", label=None, x="partitions"):
        """One line; a failed point is a red cross at the foot of the axes, labelled once per axes and x."""
        points = [r for r in rows if r["series"] == series and r["operation"] == operation and name in r]
        good = [(r[x], r[name][field] * scale) for r in points if r.get(name) and
                (r[name][field] > 0 or ax.get_yscale() != "log")]
        failed = [r[x] for r in points if not r.get(name)]
        if good:
            ax.plot(*zip(*good), style, marker=marker, color=COLORS[name], label=label)
        foot = blended_transform_factory(ax.transData, ax.transAxes)
        for at in failed:
            if (id(ax), at, name) in marked:
                continue
            marked.add((id(ax), at, name))
            ax.plot([at], [0.03], marker="x", color="red", markersize=10, mew=2, linestyle="none", transform=foot,
                    clip_on=False)
            ax.annotate(f"{NAMES[name]} failed", (at, 0.03), xycoords=foot, textcoords="offset points",
                        xytext=(-62, 8 if name == "petrel" else 20), fontsize=8, color="red")

    for ax, operation in ((produce_ax, "produce"), (consume_ax, "consume")):
        for name in ("petrel", "tansu"):
            curve(ax, "one-topic", operation, name, "records_per_s", 1e-3, "-", "o", f"{NAMES[name]}, one topic, spread")
            curve(ax, "one-topic-sticky", operation, name, "records_per_s", 1e-3, "-.", "D", f"{NAMES[name]}, one topic, sticky")
            curve(ax, "many-topics", operation, name, "records_per_s", 1e-3, "--", "s", f"{NAMES[name]}, 10 partitions per topic")
        ax.set_title(f"{operation}, {meta['record_bytes']} B records: rate")
        ax.set_ylabel("thousand records/s")
    cpu_ax.set_yscale("log")
    for name in ("petrel", "tansu"):
        curve(cpu_ax, "one-topic", "produce", name, "broker_cpu_us_per_record", 1, "-", "o", f"{NAMES[name]}, produce, one topic, spread")
        curve(cpu_ax, "one-topic", "consume", name, "broker_cpu_us_per_record", 1, ":", "^", f"{NAMES[name]}, consume, one topic, spread")
        curve(cpu_ax, "one-topic-sticky", "produce", name, "broker_cpu_us_per_record", 1, "-.", "D",
              f"{NAMES[name]}, produce, one topic, sticky")
        curve(cpu_ax, "many-topics", "produce", name, "broker_cpu_us_per_record", 1, "--", "s",
              f"{NAMES[name]}, produce, 10 per topic")
    cpu_ax.set_title("broker CPU (user + system) per record")
    cpu_ax.set_ylabel("µs per record (log scale)")
    for ax in (produce_ax, consume_ax, cpu_ax):
        ax.set_xscale("log")
        ax.set_xlabel("partitions")
        if ax is not cpu_ax:
            ax.set_ylim(bottom=0)
    conn_twin = conn_ax.twinx()
    for name in ("petrel", "tansu"):
        curve(conn_ax, "connections", "produce", name, "records_per_s", 1e-3, "-", "o", f"{NAMES[name]}, records/s", x="connections")
        curve(conn_twin, "connections", "produce", name, "broker_cpu_us_per_record", 1, ":", "^",
              f"{NAMES[name]}, µs/record", x="connections")
    conn_ax.set_xscale("log")
    conn_ax.set_xlabel(f"producer connections (one topic of {meta['connection_partitions']} partition(s))")
    conn_ax.set_ylabel("thousand records/s (solid)")
    conn_twin.set_ylabel("broker µs per record (dotted)")
    conn_ax.set_ylim(bottom=0)
    conn_twin.set_ylim(bottom=0)
    conn_ax.set_title("produce, by producer connections")
    lines, labels = conn_ax.get_legend_handles_labels()
    more_lines, more_labels = conn_twin.get_legend_handles_labels()
    if lines or more_lines:
        conn_ax.legend(lines + more_lines, labels + more_labels, fontsize=8, loc="lower right")
    for ax in (produce_ax, consume_ax, cpu_ax):
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8, loc="best")
        ax.grid(True, which="both", alpha=0.3)
    conn_ax.grid(True, which="both", alpha=0.3)
    fig.suptitle(f"Petrel and tansu, cost curves — one run, {meta['date']}, {meta['cores']} cores shared by broker and "
                 f"load generator; median of {meta['repeat']} per point", fontsize=11)
    fig.tight_layout(rect=(0, 0, 1, 0.96))
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
