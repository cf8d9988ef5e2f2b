"""read_metadata on the real DFDC sample and on hand-broken folders; grouped folds never leak."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pandas as pd
import pytest

from dfdc.errors import DfdcError
from dfdc.metadata import COLUMNS, NO_PART, assign_folds, parse_parts, read_metadata


def make_part(folder: Path, entries: dict | str, files: list[str] | None = None) -> Path:
    """A part folder: metadata.json (a dict, or raw text for broken JSON) and empty mp4 files."""
    folder.mkdir(parents=True)
    text = entries if isinstance(entries, str) else json.dumps(entries)
    (folder / "metadata.json").write_text(text)
    names = files if files is not None else list(entries) if isinstance(entries, dict) else []
    for name in names:
        (folder / name).write_bytes(b"")
    return folder


def real(name: str) -> tuple[str, dict]:
    return name, {"label": "REAL", "split": "train", "original": None}


def fake(name: str, original: str) -> tuple[str, dict]:
    return name, {"label": "FAKE", "split": "train", "original": original}


def test_real_sample(sample_dir: Path) -> None:
    df = read_metadata(sample_dir)
    assert list(df.columns) == COLUMNS
    assert len(df) == 5 and (df["part"] == NO_PART).all()
    assert df["label"].value_counts().to_dict() == {"FAKE": 3, "REAL": 2}
    assert all(Path(p).is_file() for p in df["path"])
    reals, fakes = df[df["label"] == "REAL"], df[df["label"] == "FAKE"]
    assert (reals["cluster"] == reals["name"]).all() and reals["original"].isna().all()
    assert (fakes["cluster"] == fakes["original"]).all()
    assert df.set_index("name").loc["yhffcuhhjy.mp4", "original"] == "wdpsifpppf.mp4"
    # The sample holds none of the fakes' originals: counted, not an error.
    assert df.attrs["problems"] == {"missing_original": 3}


def test_parse_parts() -> None:
    assert parse_parts("0-3,12") == [0, 1, 2, 3, 12]
    assert parse_parts(" 7 , 2-3,3") == [2, 3, 7]
    assert parse_parts("49") == [49]
    for bad in ["", "a", "3-1", "1-", "1,,2", "-4"]:
        with pytest.raises(DfdcError, match="bad part selection"):
            parse_parts(bad)


def test_parts_selection_and_clusters(tmp_path: Path) -> None:
    make_part(tmp_path / "dfdc_train_part_0", dict([real("a.mp4"), fake("b.mp4", "a.mp4"), fake("c.mp4", "a.mp4")]))
    make_part(tmp_path / "dfdc_train_part_1", dict([real("d.mp4"), fake("e.mp4", "d.mp4")]))
    make_part(tmp_path / "dfdc_train_part_12", dict([real("f.mp4")]))
    everything = read_metadata(tmp_path)
    assert everything["part"].tolist() == [0, 0, 0, 1, 1, 12]
    assert everything["cluster"].tolist() == ["a.mp4"] * 3 + ["d.mp4"] * 2 + ["f.mp4"]
    assert everything.attrs["problems"] == {}
    assert read_metadata(tmp_path, "0,12")["name"].tolist() == ["a.mp4", "b.mp4", "c.mp4", "f.mp4"]
    assert read_metadata(tmp_path, [1])["name"].tolist() == ["d.mp4", "e.mp4"]
    one = read_metadata(tmp_path / "dfdc_train_part_12")  # a part folder on its own keeps its number
    assert one["part"].tolist() == [12]
    with pytest.raises(DfdcError, match=r"parts not found: 2-11 \(have 0-1,12\)"):
        read_metadata(tmp_path, "0-12")


def test_broken_data_is_counted_not_dropped_silently(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    entries = dict([
        real("a.mp4"), fake("b.mp4", "a.mp4"),
        fake("gone.mp4", "a.mp4"), real("gone2.mp4"),  # listed, not on disk
        ("odd.mp4", {"label": "MAYBE"}), ("nolabel.mp4", {}), ("notdict.mp4", "FAKE"),  # unknown labels
        fake("orphan.mp4", "nowhere.mp4"),  # original not in the data
        ("lost.mp4", {"label": "FAKE", "original": None}),  # fakes without a usable original
        ("odd2.mp4", {"label": "fake", "original": 7}),
    ])
    on_disk = ["a.mp4", "b.mp4", "odd.mp4", "nolabel.mp4", "notdict.mp4", "orphan.mp4", "lost.mp4", "odd2.mp4",
               "extra.mp4"]
    make_part(tmp_path / "dfdc_train_part_0", entries, on_disk)
    make_part(tmp_path / "dfdc_train_part_1", "{not json", ["x.mp4"])
    make_part(tmp_path / "dfdc_train_part_2", dict([real("a.mp4"), real("c.mp4")]))  # a.mp4 again
    with caplog.at_level(logging.WARNING, logger="dfdc.metadata"):
        df = read_metadata(tmp_path)
    assert df.attrs["problems"] == {
        "missing_file": 2, "unknown_label": 3, "unlisted_file": 1, "broken_json": 1,
        "duplicate": 1, "missing_original": 1, "fake_without_original": 2,
    }
    assert df["name"].tolist() == ["a.mp4", "b.mp4", "lost.mp4", "odd2.mp4", "orphan.mp4", "c.mp4"]
    assert df.set_index("name").loc["lost.mp4", "cluster"] == "lost.mp4"
    assert df.set_index("name").loc["odd2.mp4", "label"] == "FAKE"  # labels are read case-blind
    assert df.set_index("name").loc["orphan.mp4", "cluster"] == "nowhere.mp4"
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 7 and all("\n" not in line for line in lines)
    assert any("dfdc_train_part_1" in line and "not a JSON" in line for line in lines)
    assert any("2 listed videos missing" in line and "gone.mp4" in line for line in lines)


def test_folder_errors(tmp_path: Path) -> None:
    with pytest.raises(DfdcError, match="not a folder"):
        read_metadata(tmp_path / "nope")
    with pytest.raises(DfdcError, match="no metadata.json here, nor in any sub-folder") as err:
        read_metadata(tmp_path)
    assert err.value.path == tmp_path
    (tmp_path / "dfdc_train_part_3").mkdir()
    with pytest.raises(DfdcError, match="no metadata.json in this part folder") as err:
        read_metadata(tmp_path)
    assert err.value.path == tmp_path / "dfdc_train_part_3"
    lone = make_part(tmp_path / "sample", dict([real("a.mp4")]))
    with pytest.raises(DfdcError, match="part selection needs"):
        read_metadata(lone, "0")
    make_part(tmp_path / "empty", "[]")
    with pytest.raises(DfdcError, match="no usable videos \\(broken_json: 1\\)"):
        read_metadata(tmp_path / "empty")


def clustered_table(n_clusters: int = 23) -> pd.DataFrame:
    """Clusters of one original and 0-4 fakes spread over 6 parts, as in DFDC."""
    rows = []
    for c in range(n_clusters):
        original = f"r{c}.mp4"
        rows.append({"name": original, "label": "REAL", "cluster": original, "part": c % 6})
        rows += [{"name": f"f{c}_{j}.mp4", "label": "FAKE", "cluster": original, "part": c % 6}
                 for j in range(c % 5)]
    return pd.DataFrame(rows)


@pytest.mark.parametrize("by", ["cluster", "part"])
def test_grouped_folds_never_leak(by: str) -> None:
    df = clustered_table()
    folds_by_seed = []
    for seed in range(8):
        out = assign_folds(df, k=5, by=by, seed=seed)
        assert len(out) == len(df) and "fold" not in df.columns
        assert set(out["fold"]) == set(range(5))
        assert (out.groupby(by)["fold"].nunique() == 1).all()  # no group in two folds
        assert (out.groupby("cluster")["fold"].nunique() == 1).all()  # parts hold whole clusters too
        folds_by_seed.append(tuple(out["fold"]))
    assert len(set(folds_by_seed)) > 1  # the seed matters
    assert assign_folds(df, k=5, by=by, seed=3)["fold"].tolist() == list(folds_by_seed[3])


def test_fold_errors() -> None:
    df = clustered_table(4)
    with pytest.raises(DfdcError, match="cannot make 5 folds from 4 clusters"):
        assign_folds(df, k=5)
    with pytest.raises(DfdcError, match="unknown fold grouping"):
        assign_folds(df, by="label")


def test_named_folders_are_parts_and_bad_ones_are_told_in_one_line(tmp_path: Path, caplog) -> None:
    """A root like ../shared/data/real: one folder per identity group, any names."""
    make_part(tmp_path / "celebdf", dict([real("a.mp4"), fake("b.mp4", "a.mp4")]))
    make_part(tmp_path / "ffpp_1_2", {**dict([real("c.mp4"), fake("d.mp4", "c.mp4")]),
                                      "e.mp4": {"label": "MAYBE"}, "gone.mp4": {"label": "REAL"}}, ["c.mp4", "d.mp4"])
    make_part(tmp_path / "broken", "{not json", ["x.mp4"])
    (tmp_path / "no_metadata").mkdir()
    with caplog.at_level("WARNING"):
        df = read_metadata(tmp_path)
    assert df["name"].tolist() == ["a.mp4", "b.mp4", "c.mp4", "d.mp4"]
    assert df.groupby("folder")["part"].nunique().eq(1).all() and df["part"].nunique() == 2
    assert set(df["folder"]) == {"celebdf", "ffpp_1_2"}
    lines = [r.getMessage() for r in caplog.records]
    for needle in ("not a JSON", "without a REAL/FAKE label", "missing on disk", "without metadata.json"):
        assert sum(needle in line for line in lines) == 1, (needle, lines)
    with pytest.raises(DfdcError, match="part selection needs a folder of dfdc_train_part_N folders only"):
        read_metadata(tmp_path, "0")
    folds = assign_folds(df, k=2, by="part")
    assert folds.groupby("folder")["fold"].nunique().eq(1).all()  # a folder is never split
