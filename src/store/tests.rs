use super::*;
use crate::record::RequestRecord;
use crate::scenario::model::RunOrder;

fn manifest() -> Manifest {
    Manifest {
        schema_version: SCHEMA_VERSION,
        exp_version: "0.1.0".into(),
        git_revision: None,
        host: None,
        run_id: "r1".into(),
        scenario_name: "demo".into(),
        scenario_file: "demo.toml".into(),
        scenario_sha256: "00".into(),
        overrides: vec![],
        target_override: None,
        seed: 1,
        repetitions: 2,
        order: RunOrder::RandomizedBlocks,
        executor: "sim".into(),
        cells: vec![],
        schedule: vec![],
        started: "2026-11-21T00:00:00Z".into(),
        ended: None,
        status: RunStatus::Running,
        warnings: vec![],
        launches: vec![],
        adaptive: None,
        sequential: None,
        session: None,
        baseline: None,
        node: None,
        shard: None,
        merged: Vec::new(),
        client: None,
        merged_clients: Vec::new(),
    }
}

fn marker(cell: &str, round: u32) -> RepMarker {
    RepMarker {
        schema_version: SCHEMA_VERSION,
        cell_id: cell.into(),
        round,
        records: 0,
        origin_wall: now_rfc3339(),
        wall_seconds: 0.1,
        client_cpu_seconds: None,
        details: Default::default(),
        failure: None,
    }
}

fn rec(i: u64) -> RequestRecord {
    RequestRecord::sent_ok(i, i)
}

#[test]
fn only_repetitions_with_a_marker_count_as_complete() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = RunDir::create(tmp.path(), &manifest(), "x = 1").unwrap();
    let mut w = dir.start_repetition("cell-a", 0).unwrap();
    w.append(&rec(0)).unwrap();
    w.append(&rec(1)).unwrap();
    w.finish(marker("cell-a", 0)).unwrap();
    // An interrupted repetition: records written, no marker.
    let mut partial = dir.start_repetition("cell-a", 1).unwrap();
    partial.append(&rec(0)).unwrap();
    drop(partial);

    let done = dir.completed().unwrap();
    assert_eq!(
        done.into_iter().collect::<Vec<_>>(),
        vec![("cell-a".to_string(), 0)]
    );
    assert_eq!(dir.records("cell-a", 0).unwrap(), vec![rec(0), rec(1)]);
    assert_eq!(dir.marker("cell-a", 0).unwrap().records, 2);

    // Reopening reads the same manifest; redoing a repetition truncates its partial file.
    let (again, m) = RunDir::open(dir.root()).unwrap();
    assert_eq!(m, manifest());
    let w = again.start_repetition("cell-a", 1).unwrap();
    w.finish(marker("cell-a", 1)).unwrap();
    assert!(again.records("cell-a", 1).unwrap().is_empty());
}

/// Issue 12: a killed run's records file shows what had finished, not an empty buffer. The
/// writer is never finished here, as after `kill -9`.
#[test]
fn appended_records_reach_the_file_within_the_flush_interval() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = RunDir::create(tmp.path(), &manifest(), "").unwrap();
    let mut w = dir.start_repetition("c", 0).unwrap();
    let in_file = || {
        let mut n = 0;
        dir.rep_records("c", 0).replay(&mut |_| n += 1).unwrap();
        n
    };
    w.append(&rec(0)).unwrap();
    w.flush().unwrap();
    assert_eq!(in_file(), 1, "flushed on demand (the writer task's timer)");
    std::thread::sleep(FLUSH_EVERY);
    w.append(&rec(1)).unwrap();
    assert_eq!(
        in_file(),
        2,
        "written by the append that came after the interval"
    );
    w.append(&rec(2)).unwrap();
    assert_eq!(in_file(), 2, "buffered within the interval");
    drop(w);
    assert_eq!(dir.records("c", 0).unwrap().len(), 3);
}

#[test]
fn redoing_a_finished_repetition_removes_its_old_marker_first() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = RunDir::create(tmp.path(), &manifest(), "").unwrap();
    dir.start_repetition("c", 0)
        .unwrap()
        .finish(marker("c", 0))
        .unwrap();
    let _w = dir.start_repetition("c", 0).unwrap();
    assert!(dir.completed().unwrap().is_empty());
}

#[test]
fn a_manifest_from_a_newer_exp_is_refused_with_advice() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = RunDir::create(tmp.path(), &manifest(), "").unwrap();
    let path = dir.root().join("manifest.json");
    let text = std::fs::read_to_string(&path).unwrap().replace(
        &format!("\"schema_version\": {SCHEMA_VERSION}"),
        "\"schema_version\": 99",
    );
    std::fs::write(&path, text).unwrap();
    let err = RunDir::open(dir.root()).unwrap_err().to_string();
    assert!(
        err.ends_with(
            "written by a newer exp (schema_version 99, this exp reads ≤ 1); upgrade exp"
        ),
        "{err}"
    );
}

#[test]
fn an_unwritable_output_folder_is_a_clear_error() {
    let err =
        RunDir::create(Path::new("/proc/exp-cannot-write-here"), &manifest(), "").unwrap_err();
    assert!(
        err.to_string()
            .starts_with("/proc/exp-cannot-write-here/demo/r1"),
        "{err}"
    );
}

#[test]
fn atomic_write_replaces_whole_files() {
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("summary.json");
    write_atomic(&p, b"first version, long").unwrap();
    write_atomic(&p, b"second").unwrap();
    assert_eq!(std::fs::read(&p).unwrap(), b"second");
    assert_eq!(
        std::fs::read_dir(tmp.path()).unwrap().count(),
        1,
        "no temporary file left"
    );
}

/// Issue 6: a crafted scenario name or run id cannot put a run directory outside `--out`.
#[test]
fn names_that_would_escape_the_output_folder_are_refused() {
    let parent = tempfile::tempdir().unwrap();
    let out = parent.path().join("reports");
    for bad in ["..", "../x", "a/b", "a/", "/tmp/x", ".", "", "a\\b"] {
        for field in ["scenario_name", "run_id"] {
            let mut m = manifest();
            match field {
                "scenario_name" => m.scenario_name = bad.into(),
                _ => m.run_id = bad.into(),
            }
            let err = RunDir::create(&out, &m, "").unwrap_err().to_string();
            assert!(
                err.contains("is not a plain folder name"),
                "{field} = {bad:?}: {err}"
            );
        }
    }
    // Nothing was created, inside or beside the output folder.
    let left: Vec<_> = std::fs::read_dir(parent.path()).unwrap().collect();
    assert!(left.is_empty(), "{left:?}");
    assert!(RunDir::create(&out, &manifest(), "").is_ok());
}

/// Run directories live for months: a manifest written when `status` was a string and the
/// schedule a list of pairs still reads, and is written back in the same JSON form.
#[test]
fn an_older_manifest_reads_and_keeps_its_json_form() {
    use crate::matrix::Slot;
    let mut json = serde_json::to_value(manifest()).unwrap();
    json["status"] = "interrupted".into();
    json["schedule"] = serde_json::json!([[0, 1], [0, 0], [1, 0]]);
    json["launches"] = serde_json::json!([{
        "index": 0, "config": 0, "command": ["vllm", "serve"],
        "started": "2026-11-21T00:00:00Z", "repetitions": [[0, 1], [0, 0]]
    }]);
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("manifest.json");
    std::fs::write(&path, serde_json::to_vec(&json).unwrap()).unwrap();
    let m = manifest::read(&path).unwrap();
    assert_eq!(m.status, RunStatus::Interrupted);
    assert_eq!(m.schedule[0], Slot { round: 0, cell: 1 });
    assert_eq!(m.schedule[2], Slot { round: 1, cell: 0 });
    assert_eq!(m.launches[0].repetitions[1], Slot { round: 0, cell: 0 });
    let back = serde_json::to_value(&m).unwrap();
    for key in ["status", "schedule"] {
        assert_eq!(back[key], json[key], "{key}");
    }
    let reps = |v: &serde_json::Value| v["launches"][0]["repetitions"].clone();
    assert_eq!(reps(&back), reps(&json));
}

#[test]
fn every_run_status_is_written_as_its_lowercase_word() {
    let all = [
        (RunStatus::Running, "running"),
        (RunStatus::Complete, "complete"),
        (RunStatus::Interrupted, "interrupted"),
        (RunStatus::Partial, "partial"),
        (RunStatus::Failed, "failed"),
    ];
    for (status, word) in all {
        assert_eq!(serde_json::to_value(status).unwrap(), word);
        assert_eq!(status.to_string(), word);
        let read: RunStatus = serde_json::from_value(word.into()).unwrap();
        assert_eq!(read, status);
    }
}

#[tokio::test]
async fn texts_are_rewritten_in_place_before_the_marker_and_appending_goes_on() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = RunDir::create(tmp.path(), &manifest(), "").unwrap();
    let mut w = dir.start_repetition("c", 0).unwrap();
    let with_text = |i: u64, text: &str| RequestRecord {
        text: Some(text.into()),
        ..rec(i)
    };
    w.append(&with_text(0, "a b c")).unwrap();
    w.append(&rec(1)).unwrap();
    w.append(&with_text(2, "d e")).unwrap();
    assert_eq!(w.tally().with_text, 2);
    w.rewrite_texts(|mut r| async move {
        let n = r.text.take().unwrap().split_whitespace().count() as u32;
        r.counted = Some(crate::record::Counted {
            tokens: n,
            by: crate::record::CountedBy::Server,
            prompt: None,
        });
        r
    })
    .await
    .unwrap();
    assert_eq!(w.tally().with_text, 0);
    w.append(&rec(3)).unwrap();
    w.finish(marker("c", 0)).unwrap();
    let got = dir.records("c", 0).unwrap();
    let counted: Vec<Option<u32>> = got.iter().map(|r| r.counted.map(|c| c.tokens)).collect();
    assert_eq!(counted, [Some(3), None, Some(2), None]);
    assert!(got.iter().all(|r| r.text.is_none()));
    assert_eq!(dir.marker("c", 0).unwrap().records, 4);
    assert!(!dir.root().join("records/c/rep-000.jsonl.tmp").exists());
}
