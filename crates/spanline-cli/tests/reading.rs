//! `spanline pretty` on real files (merged by time, compressed, followed
//! through rotation and truncation) and `--since`/`--until`/`--hide`, and
//! `tail --since TIME` on a real stream.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure report

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use spanline_testkit::{KillOnDrop, RedisServer};

const BIN: &str = env!("CARGO_BIN_EXE_spanline");

fn line(time: &str, level: &str, message: &str) -> String {
    format!(
        r#"{{"timestamp":"{time}","level":"{level}","message":"{message}","target":"app","user_id":42}}"#
    )
}

fn bunyan(time: &str, level: u8, message: &str) -> String {
    format!(
        r#"{{"v":0,"name":"svc","hostname":"h1","pid":7,"time":"{time}","level":{level},"msg":"{message}"}}"#
    )
}

fn write(path: &Path, lines: &[String]) {
    std::fs::write(path, lines.join("\n") + "\n").unwrap();
}

/// `spanline pretty --color never ARGS` to its end: stdout's lines.
fn pretty(args: &[&str]) -> Vec<String> {
    let out = Command::new(BIN)
        .args(["pretty", "--color", "never"])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

fn messages(lines: &[String]) -> Vec<&str> {
    lines
        .iter()
        .map(|l| {
            l.split("] ")
                .nth(1)
                .unwrap_or("")
                .split_whitespace()
                .next()
                .unwrap_or("")
        })
        .collect()
}

#[test]
fn files_are_merged_by_time_and_compressed_ones_read() {
    let dir = tempdir();
    let a = dir.join("a.log");
    write(
        &a,
        &[
            line("2026-12-06T10:00:00.100Z", "INFO", "a1"),
            line("2026-12-06T10:00:02Z", "WARN", "a2"),
        ],
    );
    let b = dir.join("b.log");
    let b_lines = [
        bunyan("2026-12-06T10:00:01.000Z", 40, "b1"),
        bunyan("2026-12-06T10:00:03.000Z", 50, "b2"),
    ];
    write(&b, &b_lines);
    let text = b_lines.join("\n") + "\n";
    let gz = dir.join("b.log.gz");
    let mut enc = flate2::write::GzEncoder::new(
        std::fs::File::create(&gz).unwrap(),
        flate2::Compression::fast(),
    );
    enc.write_all(text.as_bytes()).unwrap();
    enc.finish().unwrap();
    let zst = dir.join("b.log.zst");
    std::fs::write(&zst, zstd::encode_all(text.as_bytes(), 1).unwrap()).unwrap();
    for b in [&b, &gz, &zst] {
        let shown = pretty(&[
            a.to_str().unwrap(),
            b.to_str().unwrap(),
            "--time-format",
            "ms",
        ]);
        assert_eq!(
            messages(&shown),
            ["a1", "b1", "a2", "b2"],
            "{b:?}: {shown:?}"
        );
        assert!(
            shown[0].starts_with("2026-12-06 10:00:00.100 [info"),
            "{shown:?}"
        );
        // bunyan's fixed keys are hidden by default.
        assert!(!shown[1].contains("hostname"), "{shown:?}");
    }
    let missing = Command::new(BIN)
        .args(["pretty", dir.join("none.log").to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!missing.status.success());
    assert!(
        String::from_utf8_lossy(&missing.stderr).contains("none.log"),
        "names the file"
    );
}

#[test]
fn since_until_and_hide_choose_what_is_shown() {
    let dir = tempdir();
    let a = dir.join("a.log");
    write(
        &a,
        &[
            line("2026-12-06T10:00:00Z", "INFO", "early"),
            line("2026-12-06T10:05:00Z", "WARN", "middle"),
            line("2026-12-06T10:10:00Z", "ERROR", "late"),
        ],
    );
    let a = a.to_str().unwrap();
    let shown = pretty(&[
        a,
        "--since",
        "2026-12-06T10:01:00Z",
        "--until",
        "2026-12-06T10:10:00Z",
    ]);
    assert_eq!(messages(&shown), ["middle"]);
    assert!(shown[0].contains("user_id=42"));
    let hidden = pretty(&[a, "--hide", "user_id"]);
    assert_eq!(hidden.len(), 3);
    assert!(hidden.iter().all(|l| !l.contains("user_id")), "{hidden:?}");
    // Relative to now: all of these are long ago, or all after `-1000w`.
    assert!(pretty(&[a, "--since", "-15m"]).is_empty());
    assert_eq!(pretty(&[a, "--since", "-1000w"]).len(), 3);
    // The query language: one grammar with the console's search.
    let queried = pretty(&[a, "-q", "level>=warn and user_id=42 and not late"]);
    assert_eq!(messages(&queried), ["middle"]);
    let wrong = Command::new(BIN)
        .args(["pretty", a, "-q", "level>="])
        .output()
        .unwrap();
    assert!(!wrong.status.success());
    let said = String::from_utf8_lossy(&wrong.stderr);
    assert!(
        said.contains("column 8") && said.contains("level>="),
        "{said}"
    );
    let bad = Command::new(BIN)
        .args(["pretty", a, "--since", "soon"])
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("is not a time"));
}

#[test]
fn follow_reads_appended_rotated_and_truncated_files() {
    let dir = tempdir();
    let path = dir.join("app.log");
    write(&path, &[line("2026-12-06T10:00:00Z", "INFO", "first")]);
    let mut child = KillOnDrop(
        Command::new(BIN)
            .args(["pretty", "--color", "never", "-F", path.to_str().unwrap()])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let (tx, rx) = mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            if tx.send(line.unwrap()).is_err() {
                break;
            }
        }
    });
    let next = || {
        rx.recv_timeout(Duration::from_secs(10))
            .expect("a line within 10 s")
    };
    assert!(next().contains("first"));
    // Appended, in two writes: a line is shown once it is whole.
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap();
    let appended = line("2026-12-06T10:00:01Z", "INFO", "appended");
    let (head, tail) = appended.split_at(20);
    file.write_all(head.as_bytes()).unwrap();
    file.flush().unwrap();
    std::thread::sleep(Duration::from_millis(500));
    file.write_all(format!("{tail}\n").as_bytes()).unwrap();
    assert!(next().contains("appended"));
    // Rotated: renamed away, a new file in its place.
    std::fs::rename(&path, dir.join("app.log.1")).unwrap();
    write(&path, &[line("2026-12-06T10:00:02Z", "WARN", "rotated")]);
    assert!(next().contains("rotated"));
    // Truncated, then written again.
    std::fs::write(&path, "").unwrap();
    std::thread::sleep(Duration::from_millis(500));
    write(&path, &[line("2026-12-06T10:00:03Z", "ERROR", "again")]);
    assert!(next().contains("again"));
}

#[test]
fn tail_since_a_time_reads_the_stream_from_then() {
    let server = RedisServer::start();
    let mut con = server.client().get_connection().unwrap();
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    // An old entry (an hour ago) and two recent ones, with explicit ids.
    for (at, message) in [
        (now_ms - 3_600_000, "old"),
        (now_ms - 60_000, "recent"),
        (now_ms - 1_000, "newest"),
    ] {
        let _: String = redis::cmd("XADD")
            .arg("logs:global")
            .arg(format!("{at}-0"))
            .arg("line")
            .arg(format!(
                r#"{{"level":"INFO","message":"{message}","target":"app"}}"#
            ))
            .query(&mut con)
            .unwrap();
    }
    let out = Command::new(BIN)
        .args([
            "tail",
            "--redis",
            &server.url(),
            "--global",
            "--since",
            "-15m",
            "--count",
            "2",
            "--color",
            "never",
        ])
        .env_remove("SPANLINE_REDIS_URL")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(
        messages(&text.lines().map(str::to_string).collect::<Vec<_>>()),
        ["recent", "newest"],
        "{text}"
    );
}

/// `spanline pretty --color never ARGS` with `input` on stdin: stdout's
/// bytes.
fn pretty_stdin(args: &[&str], input: &[u8]) -> Vec<u8> {
    let mut child = Command::new(BIN)
        .args(["pretty", "--color", "never"])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    assert!(out.status.success());
    out.stdout
}

#[test]
fn one_file_is_read_in_parallel_chunks_with_the_output_of_a_stream() {
    // A file of several 1 MiB chunks, read by worker threads, against the
    // same bytes on stdin, read a line at a time: the same output, in the
    // same order. The file has what a chunk's cut could break: a line
    // longer than a chunk, CRLF ends, bytes that are not UTF-8, text that
    // is not JSON, empty lines, and no end on its last line.
    let dir = tempdir();
    let path = dir.join("big.log");
    let mut bytes = Vec::new();
    for i in 0..40_000u32 {
        let level = ["DEBUG", "INFO", "WARN", "ERROR"][i as usize % 4];
        let user = if i % 97 == 0 { 42 } else { 100_000 + i };
        bytes.extend_from_slice(
            format!(
                r#"{{"timestamp":"2026-12-06T10:00:00.{i:06}Z","level":"{level}","message":"line {i}","target":"app","user_id":{user}}}"#
            )
            .as_bytes(),
        );
        bytes.extend_from_slice(match i % 1000 {
            1 => b"\r\n" as &[u8],
            2 => b"\nnot json \xff\xfe here\n",
            3 => b"\n\n",
            _ => b"\n",
        });
        if i == 20_000 {
            let long = "x".repeat(1_500_000);
            bytes.extend_from_slice(
                format!(r#"{{"level":"WARN","message":"long","user_id":42,"blob":"{long}"}}"#)
                    .as_bytes(),
            );
            bytes.push(b'\n');
        }
    }
    bytes.extend_from_slice(
        br#"{"level":"WARN","message":"the last, without an end","user_id":42}"#,
    );
    std::fs::write(&path, &bytes).unwrap();
    assert!(bytes.len() > 4 << 20, "several chunks");
    let file = path.to_str().unwrap();
    for args in [
        &[][..],
        &["-q", "level>=warn and user_id=42"],
        &["-q", "line"],
    ] {
        let from_file = pretty_stdin(&[args, &[file]].concat(), b"");
        let from_stdin = pretty_stdin(args, &bytes);
        assert!(!from_file.is_empty());
        assert!(
            from_file == from_stdin,
            "{args:?}: {} bytes from the file, {} from stdin",
            from_file.len(),
            from_stdin.len()
        );
    }
    let warned = String::from_utf8(pretty_stdin(
        &["-q", "level>=warn and user_id=42", file],
        b"",
    ))
    .unwrap();
    assert!(
        warned.contains("long") && warned.contains("the last, without an end"),
        "{}",
        &warned[..200.min(warned.len())]
    );
    assert_eq!(
        warned.lines().count(),
        1 + 1 + (0..40_000).filter(|i| i % 97 == 0 && i % 4 >= 2).count()
    );
}

/// A fresh directory under the target's tmp, removed by nobody (small).
fn tempdir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "spanline-reading-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
