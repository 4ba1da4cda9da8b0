//! `spanline pretty`: JSON lines from stdin or files, rendered for people.
//! Several files are merged by time; `-F` follows them as they grow.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{mpsc, Mutex, PoisonError};
use std::time::Duration;

use spanline_core::Timestamp;
use spanline_json::read::Record;

use crate::view::ViewArgs;
use crate::Color;

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Files to read (stdin when none, or `-`). Several are merged by the
    /// lines' times; `.gz` and `.zst` files are decompressed.
    #[arg(value_name = "FILE")]
    files: Vec<PathBuf>,
    /// Follow the files as they grow (and as they are rotated or
    /// truncated), like `tail -F`.
    #[arg(short = 'F', long)]
    follow: bool,
    /// Show only lines logged at or after this time: `-15m`, `2h` (that
    /// long ago), `2026-12-06`, `2026-12-06T10:00:00Z`.
    #[arg(long, value_name = "TIME", value_parser = crate::when::parse, allow_hyphen_values = true)]
    since: Option<Timestamp>,
    /// When to colour the output (`auto`: on a terminal, unless NO_COLOR is set).
    #[arg(long, value_enum, default_value_t = Color::Auto)]
    color: Color,
    #[command(flatten)]
    view: ViewArgs,
}

/// Bytes read from a file or stdin at a time.
const READ_BUFFER: usize = 256 * 1024;

/// How often a followed file is looked at again.
const POLL: Duration = Duration::from_millis(200);

pub(crate) fn main(args: Args) -> io::Result<ExitCode> {
    let ansi = args.color.enabled();
    let view = args.view.clone().since(args.since);
    let mut out = Out {
        out: io::BufWriter::new(io::stdout().lock()),
        view,
        ansi,
    };
    let stdin_only = args.files.is_empty() || args.files.iter().all(|f| f.as_os_str() == "-");
    let result = if stdin_only {
        read_stream(io::stdin().lock(), &mut out)
    } else if args.follow {
        follow(&args.files, &mut out)
    } else {
        merge(&args.files, &mut out)
    };
    match result {
        // A closed pipe (`| head`) ends the output quietly.
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(ExitCode::SUCCESS),
        Err(e) => Err(e),
        Ok(()) => {
            out.out.flush()?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Where rendered lines go.
struct Out<W: Write> {
    out: W,
    view: ViewArgs,
    ansi: bool,
}

impl<W: Write> Out<W> {
    /// Reads and renders one line of text. A line the query drops is read
    /// only as far as the query needs (most lines of a filtered file).
    fn text(&mut self, text: &str) -> io::Result<()> {
        match render_text(&self.view, self.ansi, text) {
            Some(rendered) => self.out.write_all(rendered.as_bytes()),
            None => Ok(()),
        }
    }

    /// Renders one line: a JSON object as the console renderer shows it;
    /// anything else passed through, marked, with control characters
    /// neutralised.
    fn line(&mut self, text: &str, record: Option<&Record>) -> io::Result<()> {
        let rendered = match record {
            Some(record) => self.view.render_record(record, self.ansi),
            None => self.view.render(text, self.ansi),
        };
        match rendered {
            Some(rendered) => self.out.write_all(rendered.as_bytes()),
            None => Ok(()),
        }
    }
}

/// A line of text rendered, or `None` when it is empty or a filter drops
/// it. A line the query drops is read only as far as the query needs.
fn render_text(view: &ViewArgs, ansi: bool, text: &str) -> Option<String> {
    if text.is_empty() || view.query_drops(text) {
        return None;
    }
    view.render(text, ansi)
}

/// One line of bytes, without its end; `None` at the end of the input.
/// Bytes that are not UTF-8 are shown replaced, never a crash.
fn next_line<'r>(
    reader: &mut impl BufRead,
    raw: &'r mut Vec<u8>,
) -> io::Result<Option<Cow<'r, str>>> {
    raw.clear();
    if reader.read_until(b'\n', raw)? == 0 {
        return Ok(None);
    }
    Ok(Some(line_text(raw)))
}

/// A line's bytes as text, without its end (borrowed when they are UTF-8).
fn line_text(raw: &[u8]) -> Cow<'_, str> {
    let end = ['\n', '\r'];
    // `from_utf8` first: it checks ASCII a word at a time, where
    // `from_utf8_lossy` goes a character at a time.
    match std::str::from_utf8(raw) {
        Ok(text) => Cow::Borrowed(text.trim_end_matches(end)),
        Err(_) => Cow::Owned(
            String::from_utf8_lossy(raw)
                .trim_end_matches(end)
                .to_string(),
        ),
    }
}

fn read_stream(input: impl Read, out: &mut Out<impl Write>) -> io::Result<()> {
    let mut reader = BufReader::with_capacity(READ_BUFFER, input);
    let mut raw = Vec::new();
    while let Some(line) = next_line(&mut reader, &mut raw)? {
        out.text(&line)?;
    }
    Ok(())
}

/// Opens a file, decompressing `.gz` and `.zst` ones; `-` is stdin.
fn open(path: &PathBuf) -> io::Result<Box<dyn BufRead>> {
    let named = |e: io::Error| io::Error::new(e.kind(), format!("{}: {e}", path.display()));
    if path.as_os_str() == "-" {
        return Ok(Box::new(BufReader::with_capacity(READ_BUFFER, io::stdin())));
    }
    let file = File::open(path).map_err(named)?;
    Ok(match path.extension().and_then(|e| e.to_str()) {
        Some("gz") => Box::new(BufReader::with_capacity(
            READ_BUFFER,
            flate2::read::MultiGzDecoder::new(file),
        )),
        Some("zst") => Box::new(BufReader::with_capacity(
            READ_BUFFER,
            zstd::Decoder::new(file).map_err(named)?,
        )),
        _ => Box::new(BufReader::with_capacity(READ_BUFFER, file)),
    })
}

/// Bytes of whole lines handed to a worker at a time.
const CHUNK: usize = 1 << 20;

/// One file, in chunks of whole lines that worker threads (one per core)
/// read, filter and render side by side; this thread writes what they
/// rendered in the file's order. Reading JSON is most of the work of a
/// filter over a large file, and it parallelises line by line.
fn read_parallel(mut input: impl Read, out: &mut Out<impl Write>) -> io::Result<()> {
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get().min(8));
    if workers < 2 {
        return read_stream(input, out);
    }
    let (view, ansi) = (&out.view, out.ansi);
    let (work, jobs) = mpsc::channel::<(u64, Vec<u8>)>();
    let jobs = Mutex::new(jobs);
    let (done, results) = mpsc::channel::<(u64, Vec<u8>)>();
    std::thread::scope(|scope| {
        for _ in 0..workers {
            let (jobs, done) = (&jobs, done.clone());
            scope.spawn(move || loop {
                let job = jobs.lock().unwrap_or_else(PoisonError::into_inner).recv();
                let Ok((seq, chunk)) = job else { return };
                if done.send((seq, render_chunk(view, ansi, &chunk))).is_err() {
                    return;
                }
            });
        }
        // Only the workers hold a sender now: if they all stop, the
        // receiving below ends instead of waiting for ever.
        drop(done);
        // Chunks sent and written; those rendered ahead of their turn.
        let (mut sent, mut written) = (0u64, 0u64);
        let mut ahead = BTreeMap::new();
        let mut write = |(seq, rendered): (u64, Vec<u8>), written: &mut u64| -> io::Result<()> {
            ahead.insert(seq, rendered);
            while let Some(rendered) = ahead.remove(written) {
                out.out.write_all(&rendered)?;
                *written += 1;
            }
            Ok(())
        };
        let mut carry = Vec::new();
        loop {
            let (chunk, end) = next_chunk(&mut input, &mut carry)?;
            if !chunk.is_empty() {
                // A few chunks in flight per worker: memory stays bounded
                // whatever the file's size.
                while sent - written >= 2 * workers as u64 {
                    let Ok(result) = results.recv() else { break };
                    write(result, &mut written)?;
                }
                if work.send((sent, chunk)).is_err() {
                    break;
                }
                sent += 1;
            }
            if end {
                break;
            }
        }
        drop(work);
        while written < sent {
            let Ok(result) = results.recv() else { break };
            write(result, &mut written)?;
        }
        Ok(())
    })
}

/// The next chunk of whole lines (`carry` holds a line begun in the last
/// read), and whether the input has ended.
fn next_chunk(input: &mut impl Read, carry: &mut Vec<u8>) -> io::Result<(Vec<u8>, bool)> {
    let mut chunk = std::mem::take(carry);
    let start = chunk.len();
    chunk.resize(start + CHUNK, 0);
    let mut filled = start;
    while filled < chunk.len() {
        match input.read(&mut chunk[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    let end = filled < chunk.len();
    chunk.truncate(filled);
    if !end {
        // Cut after the last whole line; a line longer than a chunk grows
        // the next one.
        let cut = memchr::memrchr(b'\n', &chunk).map_or(0, |at| at + 1);
        *carry = chunk.split_off(cut);
    }
    Ok((chunk, end))
}

/// A chunk of whole lines, rendered.
fn render_chunk(view: &ViewArgs, ansi: bool, chunk: &[u8]) -> Vec<u8> {
    let mut rendered = Vec::new();
    let mut start = 0;
    for end in memchr::memchr_iter(b'\n', chunk).chain([chunk.len()]) {
        if let Some(text) = chunk.get(start..end).map(line_text) {
            if let Some(line) = render_text(view, ansi, &text) {
                rendered.extend_from_slice(line.as_bytes());
            }
        }
        start = end + 1;
    }
    rendered
}

/// A file's next line, read ahead, with its time.
struct Head {
    text: String,
    record: Option<Record>,
}

impl Head {
    fn time(&self) -> Option<Timestamp> {
        self.record.as_ref().and_then(|r| r.time)
    }
}

/// Several files, merged by time: the earliest of the files' next lines
/// goes first (a line without a time goes as soon as it is read, so each
/// file keeps its own order).
fn merge(paths: &[PathBuf], out: &mut Out<impl Write>) -> io::Result<()> {
    if let [path] = paths {
        return read_parallel(open(path)?, out);
    }
    let mut readers = paths.iter().map(open).collect::<io::Result<Vec<_>>>()?;
    let mut raw = Vec::new();
    let mut heads: Vec<Option<Head>> = Vec::with_capacity(readers.len());
    for reader in &mut readers {
        heads.push(read_head(reader, &mut raw, &out.view)?);
    }
    loop {
        let next = heads
            .iter()
            .enumerate()
            .filter_map(|(i, h)| h.as_ref().map(|h| (i, h.time())))
            // `None` (no time) sorts first: shown at once.
            .min_by_key(|(_, time)| *time)
            .map(|(i, _)| i);
        let Some(i) = next else { return Ok(()) };
        if let Some(head) = heads[i].take() {
            out.line(&head.text, head.record.as_ref())?;
        }
        heads[i] = read_head(&mut readers[i], &mut raw, &out.view)?;
    }
}

/// A file's next line that may be shown (a line the query drops is never
/// a head: its place in time does not matter).
fn read_head(
    reader: &mut impl BufRead,
    raw: &mut Vec<u8>,
    view: &ViewArgs,
) -> io::Result<Option<Head>> {
    while let Some(text) = next_line(reader, raw)? {
        if !text.is_empty() && !view.query_drops(&text) {
            let record = Record::read(&text);
            let text = text.into_owned();
            return Ok(Some(Head { text, record }));
        }
    }
    Ok(None)
}

/// A followed file: where it was read to, and which file that was.
struct Followed {
    path: PathBuf,
    reader: Option<BufReader<File>>,
    at: u64,
    inode: u64,
    /// The end of a line not yet written whole.
    partial: Vec<u8>,
}

/// Follows the files: what they hold first (merged by time), then each
/// line as it is appended, file by file. A file that is replaced (rotated)
/// is read again from its start, and one that shrinks (truncated) too.
fn follow(paths: &[PathBuf], out: &mut Out<impl Write>) -> io::Result<()> {
    merge(paths, out)?;
    out.out.flush()?;
    let mut files: Vec<Followed> = paths
        .iter()
        .map(|path| {
            let (inode, at) = stat(path).unwrap_or((0, 0));
            Followed {
                path: path.clone(),
                reader: None,
                at,
                inode,
                partial: Vec::new(),
            }
        })
        .collect();
    loop {
        let mut wrote = false;
        for file in &mut files {
            wrote |= poll(file, out)?;
        }
        if wrote {
            out.out.flush()?;
        } else {
            std::thread::sleep(POLL);
        }
    }
}

fn stat(path: &PathBuf) -> io::Result<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(path)?;
    Ok((meta.ino(), meta.len()))
}

/// Reads what was appended to `file` since last time; true if a line was
/// written.
fn poll(file: &mut Followed, out: &mut Out<impl Write>) -> io::Result<bool> {
    let Ok((inode, len)) = stat(&file.path) else {
        // Gone for now (between a rotation's rename and the new file).
        return Ok(false);
    };
    if inode != file.inode || len < file.at {
        // Rotated or truncated: the new content from its start.
        file.inode = inode;
        file.at = 0;
        file.reader = None;
        file.partial.clear();
    }
    if len == file.at {
        return Ok(false);
    }
    if file.reader.is_none() {
        let mut f = File::open(&file.path)?;
        f.seek(SeekFrom::Start(file.at))?;
        file.reader = Some(BufReader::new(f));
    }
    let Some(reader) = file.reader.as_mut() else {
        return Ok(false);
    };
    let mut wrote = false;
    loop {
        let n = reader.read_until(b'\n', &mut file.partial)?;
        if n == 0 {
            break;
        }
        file.at += n as u64;
        if file.partial.last() != Some(&b'\n') {
            // The writer is mid-line: wait for the rest.
            break;
        }
        let text = line_text(&file.partial);
        if !text.is_empty() {
            out.text(&text)?;
            wrote = true;
        }
        file.partial.clear();
    }
    Ok(wrote)
}
