//! `spanline pretty`: JSON lines from stdin or files, rendered for people.
//! Several files are merged by time; `-F` follows them as they grow.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use spanline_core::read::Record;
use spanline_core::Timestamp;

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

/// One line of bytes, without its end; `None` at the end of the input.
/// Bytes that are not UTF-8 are shown replaced, never a crash.
fn next_line(reader: &mut impl BufRead, raw: &mut Vec<u8>) -> io::Result<Option<String>> {
    raw.clear();
    if reader.read_until(b'\n', raw)? == 0 {
        return Ok(None);
    }
    Ok(Some(line_text(raw)))
}

/// A line's bytes as text, without its end.
fn line_text(raw: &[u8]) -> String {
    String::from_utf8_lossy(raw)
        .trim_end_matches(['\n', '\r'])
        .to_string()
}

fn read_stream(input: impl Read, out: &mut Out<impl Write>) -> io::Result<()> {
    let mut reader = BufReader::new(input);
    let mut raw = Vec::new();
    while let Some(line) = next_line(&mut reader, &mut raw)? {
        if !line.is_empty() {
            out.line(&line, Record::read(&line).as_ref())?;
        }
    }
    Ok(())
}

/// Opens a file, decompressing `.gz` and `.zst` ones; `-` is stdin.
fn open(path: &PathBuf) -> io::Result<Box<dyn BufRead>> {
    let named = |e: io::Error| io::Error::new(e.kind(), format!("{}: {e}", path.display()));
    if path.as_os_str() == "-" {
        return Ok(Box::new(BufReader::new(io::stdin())));
    }
    let file = File::open(path).map_err(named)?;
    Ok(match path.extension().and_then(|e| e.to_str()) {
        Some("gz") => Box::new(BufReader::new(flate2::read::MultiGzDecoder::new(file))),
        Some("zst") => Box::new(BufReader::new(zstd::Decoder::new(file).map_err(named)?)),
        _ => Box::new(BufReader::new(file)),
    })
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
    let mut readers = paths.iter().map(open).collect::<io::Result<Vec<_>>>()?;
    let mut raw = Vec::new();
    let mut heads: Vec<Option<Head>> = Vec::with_capacity(readers.len());
    for reader in &mut readers {
        heads.push(read_head(reader, &mut raw)?);
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
        heads[i] = read_head(&mut readers[i], &mut raw)?;
    }
}

fn read_head(reader: &mut impl BufRead, raw: &mut Vec<u8>) -> io::Result<Option<Head>> {
    while let Some(text) = next_line(reader, raw)? {
        if !text.is_empty() {
            let record = Record::read(&text);
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
        file.partial.clear();
        if !text.is_empty() {
            out.line(&text, Record::read(&text).as_ref())?;
            wrote = true;
        }
    }
    Ok(wrote)
}
