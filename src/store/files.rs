//! Durable file writing: records appended through a buffer that reaches the file at least
//! every [`FLUSH_EVERY`], synced before the completion marker, and whole files replaced
//! atomically (temporary file, sync, rename).

use std::fs::{self, File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::{RepMarker, StoreError};
use crate::record::{RequestRecord, Tally};

/// Longest a completed record stays in the writer's buffer: an append writes the buffer out
/// once this much has passed since it last was, and the HTTP driver's writer task calls
/// [`RepWriter::flush`] this often while no record comes. So a killed run's records file shows
/// what had finished up to this long before (in the page cache: a crash of the process loses
/// nothing, one of the machine may); it is synced to the disk only at the end. A write is a
/// `write(2)` into the page cache, a few microseconds, at most 10 a second.
pub const FLUSH_EVERY: Duration = Duration::from_millis(100);

/// Appends one repetition's records; [`RepWriter::finish`] makes them durable and marks the
/// repetition complete.
#[derive(Debug)]
pub struct RepWriter {
    stem: PathBuf,
    records_path: PathBuf,
    out: BufWriter<File>,
    /// Records in `out` not yet written to the file.
    unwritten: bool,
    last_write: Instant,
    count: u64,
    line: Vec<u8>,
    tally: Tally,
}

impl RepWriter {
    pub(super) fn create(stem: PathBuf) -> Result<Self, StoreError> {
        if let Some(dir) = stem.parent() {
            fs::create_dir_all(dir).map_err(|e| StoreError::io(dir, e))?;
        }
        let records_path = stem.with_extension("jsonl");
        // A stale marker from an earlier attempt must not survive a redo.
        let _ = fs::remove_file(stem.with_extension("done.json"));
        let file = OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .open(&records_path)
            .map_err(|e| StoreError::io(&records_path, e))?;
        Ok(RepWriter {
            stem,
            records_path,
            out: BufWriter::with_capacity(1 << 16, file),
            unwritten: false,
            last_write: Instant::now(),
            count: 0,
            line: Vec::with_capacity(1024),
            tally: Tally::default(),
        })
    }

    /// Appends one record as a JSON line.
    pub fn append(&mut self, rec: &RequestRecord) -> Result<(), StoreError> {
        self.line.clear();
        serde_json::to_writer(&mut self.line, rec).expect("records serialise");
        self.line.push(b'\n');
        self.out
            .write_all(&self.line)
            .map_err(|e| StoreError::io(&self.records_path, e))?;
        self.count += 1;
        self.tally.push(rec);
        self.unwritten = true;
        if self.last_write.elapsed() >= FLUSH_EVERY {
            self.flush()?;
        }
        Ok(())
    }

    /// Writes the buffered records to the file (not synced), if there are any.
    pub fn flush(&mut self) -> Result<(), StoreError> {
        if self.unwritten {
            (self.out.flush()).map_err(|e| StoreError::io(&self.records_path, e))?;
            self.unwritten = false;
        }
        self.last_write = Instant::now();
        Ok(())
    }

    /// What the records appended so far say about the server (`run::health`).
    pub fn tally(&self) -> &Tally {
        &self.tally
    }

    /// Records appended so far.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Passes every record that carries its generated text through `edit` (which counts its
    /// tokens and drops the text), rewriting the file in one streaming pass: a temporary
    /// file beside it, renamed over it. Done before the marker, while the file is not yet a
    /// finished repetition, so a crash part-way leaves a repetition that is simply redone.
    pub async fn rewrite_texts<F, Fut>(&mut self, mut edit: F) -> Result<(), StoreError>
    where
        F: FnMut(RequestRecord) -> Fut,
        Fut: std::future::Future<Output = RequestRecord>,
    {
        use std::io::BufRead;
        let path = self.records_path.clone();
        let io = |e| StoreError::io(&path, e);
        self.out.flush().map_err(io)?;
        let tmp = self.stem.with_extension("jsonl.tmp");
        {
            let input = std::io::BufReader::new(File::open(&path).map_err(io)?);
            let mut output = BufWriter::new(File::create(&tmp).map_err(io)?);
            for line in input.lines() {
                let line = line.map_err(io)?;
                let rec: RequestRecord = serde_json::from_str(&line)
                    .map_err(|e| io(std::io::Error::new(std::io::ErrorKind::InvalidData, e)))?;
                let rec = match rec.text.is_some() {
                    true => edit(rec).await,
                    false => rec,
                };
                serde_json::to_writer(&mut output, &rec).expect("records serialise");
                output.write_all(b"\n").map_err(io)?;
            }
            output.flush().map_err(io)?;
        }
        fs::rename(&tmp, &path).map_err(io)?;
        let file = OpenOptions::new().append(true).open(&path).map_err(io)?;
        self.out = BufWriter::with_capacity(1 << 16, file);
        self.tally.with_text = 0;
        Ok(())
    }

    /// Flushes and syncs the records, then writes the completion marker atomically.
    pub fn finish(self, mut marker: RepMarker) -> Result<(), StoreError> {
        let path = self.records_path;
        let file = self
            .out
            .into_inner()
            .map_err(|e| StoreError::io(&path, e.into_error()))?;
        file.sync_all().map_err(|e| StoreError::io(&path, e))?;
        marker.records = self.count;
        let text = serde_json::to_vec_pretty(&marker).expect("marker serialises");
        write_atomic(&self.stem.with_extension("done.json"), &text)
    }
}

/// Writes `bytes` to `path` atomically: a temporary file beside it, synced, then renamed.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp"));
    // The last line of defence: no secret exp has seen reaches a file it writes.
    let bytes = crate::secrets::scrub_bytes(bytes);
    let write = || -> std::io::Result<()> {
        let mut f = File::create(&tmp)?;
        f.write_all(&bytes)?;
        f.sync_all()?;
        fs::rename(&tmp, path)?;
        // Make the rename itself durable.
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    };
    write().map_err(|e| {
        let _ = fs::remove_file(&tmp);
        StoreError::io(path, e)
    })
}
