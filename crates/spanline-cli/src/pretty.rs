//! `spanline pretty`: JSON lines on stdin, rendered for people.

use std::io::{self, BufRead, Write};
use std::process::ExitCode;

use crate::view::ViewArgs;
use crate::Color;

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// When to colour the output (`auto`: on a terminal, unless NO_COLOR is set).
    #[arg(long, value_enum, default_value_t = Color::Auto)]
    color: Color,
    #[command(flatten)]
    view: ViewArgs,
}

pub(crate) fn main(args: Args) -> io::Result<ExitCode> {
    let ansi = args.color.enabled();
    let stdin = io::stdin().lock();
    let mut out = io::BufWriter::new(io::stdout().lock());
    let mut raw = Vec::new();
    let mut reader = io::BufReader::new(stdin);
    loop {
        raw.clear();
        if reader.read_until(b'\n', &mut raw)? == 0 {
            break;
        }
        // Bytes that are not UTF-8 are shown replaced, never a crash.
        let line = String::from_utf8_lossy(&raw);
        let line = line.trim_end_matches(['\n', '\r']);
        if line.is_empty() {
            continue;
        }
        // A JSON object as the console renderer shows it; anything else
        // passed through, marked, with control characters neutralised.
        let Some(rendered) = args.view.render(line, ansi) else {
            continue;
        };
        if let Err(e) = out.write_all(rendered.as_bytes()) {
            // A closed pipe (`| head`) ends the output quietly.
            if e.kind() == io::ErrorKind::BrokenPipe {
                return Ok(ExitCode::SUCCESS);
            }
            return Err(e);
        }
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}
