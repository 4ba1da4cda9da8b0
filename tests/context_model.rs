//! The context contract (docs/context.md), checked against a model.
//!
//! A proptest generator writes random span programs (nested spans at every
//! level with colliding keys, `Empty` fields recorded later, fixed fields
//! recorded again, `spanline::set`, spans held and re-entered, explicit
//! parents, threads, `capture().in_scope`, detached work, a snapshot round
//! trip, handles dropped mid-program); a plain-Rust model says which lines
//! each program writes and what each line carries, and when each span
//! closes and which closes end a job (docs/redis.md, "What counts as a
//! job's end"); a runner executes the program through the ways users
//! compose spanline and every line is compared with the model.
//!
//! Compositions (each under the filter `trace` and `warn`):
//! - `init`: `spanline::builder()...init()` in a child process (this test
//!   binary run again, reading programs on stdin: a global subscriber);
//! - `init+with_layer`: the same with a `LineLayer` sink via `with_layer`;
//! - `hand`: `with_default` over a registry with a sink under the
//!   `ContextLayer`, the filtered `ContextLayer`, a `JsonLayer` and a sink
//!   over it with a per-layer `LevelFilter`;
//! - `pretty`: the `PrettyLayer`, its `key=value` pairs parsed back;
//! - `pipe`: a child process forwarding to a parent `Forwarder`;
//! - `redis`: `init()` publishing to a private `redis-server`;
//! - `redis (hand)`: the `ContextLayer`, a `JsonLayer` and a `RedisLayer`
//!   composed by hand, publishing to another one.
//!
//! On Redis the `job ended` lines are checked too: exactly one per end the
//! model expects, on `logs:global` and on the job's channel, each after
//! every line of its job logged before the end and before every line logged
//! after it; no other output gets one. The model follows the rule as
//! docs/redis.md words it: a close ends the job unless the parent carries
//! the same job or the job (that id) was handed on while the span or a
//! descendant was current. Where the code's marker (the outermost span at
//! the hand-off, without the id) says otherwise, the class names the case
//! as unclear.
//!
//! Every value in a program is unique (`"v17"`, `17`), so a value from the
//! wrong line or span is recognised as such. A mismatch is classified
//! (what went wrong, and where the expected value came from), and one
//! program per class is shrunk and printed.
//!
//! `SPANLINE_MODEL_CASES` sets the cases per composition set (default 64;
//! `100000` for a soak), `SPANLINE_MODEL_SEED` the seed (printed on every
//! run). A report prints each shrunk program as JSON too:
//! `SPANLINE_MODEL_REPLAY='<json>' cargo test -p spanline --test
//! context_model replay -- --nocapture` runs it through every composition
//! and prints every line.
//!
//! One file, in marked sections (`// ==== programs` with their generation,
//! printing and minimizing; the model; the runner; sinks and sources;
//! compositions; the child side; comparing; the driver; the tests): the
//! program type is what all of them read, a new kind of op touches every
//! section at once, and a shrunk failure is replayed from this one test
//! target.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure report
#![allow(clippy::disallowed_macros)] // the report goes to stderr, the child's lines to stdout

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Write as _};
use std::process::{Child, ChildStdin, ChildStdout, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use spanline::{ContextLayer, JsonLayer, LineEvent, LineLayer, LineSink, Preset, Schema};
use tracing::span::Id;
use tracing::Span;
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::prelude::*;
use tracing_subscriber::EnvFilter;

// ==== programs ====

#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq, PartialOrd, Ord)]
enum Lvl {
    Trace,
    Debug,
    Info,
    Warn,
    Error,
}

impl Lvl {
    const ALL: [Lvl; 5] = [Lvl::Trace, Lvl::Debug, Lvl::Info, Lvl::Warn, Lvl::Error];

    fn json(self) -> &'static str {
        ["TRACE", "DEBUG", "INFO", "WARN", "ERROR"][self as usize]
    }

    fn pretty(self) -> &'static str {
        ["trace", "debug", "info", "warning", "error"][self as usize]
    }

    fn macro_name(self) -> &'static str {
        ["trace", "debug", "info", "warn", "error"][self as usize]
    }
}

/// A value; every one in a program is different.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
enum Val {
    S(String),
    I(i64),
}

impl Val {
    fn json(&self) -> Value {
        match self {
            Val::S(s) => Value::String(s.clone()),
            Val::I(n) => Value::from(*n),
        }
    }

    /// As the pretty renderer shows it.
    fn text(&self) -> String {
        match self {
            Val::S(s) => s.clone(),
            Val::I(n) => n.to_string(),
        }
    }

    fn code(&self) -> String {
        match self {
            Val::S(s) => format!("{s:?}"),
            Val::I(n) => n.to_string(),
        }
    }
}

#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
enum Parent {
    /// The current span (tracing's contextual parent).
    Current,
    /// `parent: handle.id()`, the handle taken modulo the handles there are.
    Of(u8),
    /// `parent: None`.
    Root,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
enum Op {
    /// A span, kept as a handle; `vals[i]` is `None` for a field declared
    /// without a value (`Empty`).
    Span {
        shape: u8,
        level: Lvl,
        parent: Parent,
        vals: Vec<Option<Val>>,
    },
    /// Enters a handle (kept entered until `Exit` or the end of its block).
    Enter(u8),
    /// Exits the span entered last in this block.
    Exit,
    /// `handle.record(field, val)`: one of the handle's own fields.
    Record { span: u8, field: u8, val: Val },
    /// `spanline::set(KEYS[key], val)`.
    Set { key: u8, val: Val },
    /// An event with a unique `seq`; `None` fields are not recorded.
    Event {
        shape: u8,
        level: Lvl,
        parent: Parent,
        seq: i64,
        vals: Vec<Option<Val>>,
    },
    /// `spanline::context::thread::spawn(body).join()`.
    Thread(Vec<Op>),
    /// `capture().in_scope(body)`.
    InScope(Vec<Op>),
    /// `capture().detached()`, kept as a handle.
    Detach,
    /// `ContextSnapshot::capture()`, through serde JSON, `restore("task")`,
    /// kept as a handle.
    Restore,
    /// Drops a handle (its slot holds `Span::none()` from then on): the
    /// span closes when nothing else holds it (a guard, a child, a thread).
    DropHandle(u8),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ty {
    S,
    I,
}

/// The keys `set` uses; span and event shapes use the same names, so keys
/// collide across depths. `service` is also the static field.
const KEYS: &[&str] = &[
    "k0",
    "k1",
    "k2",
    "user_id",
    "request_id",
    "job_id",
    "service",
];

/// The keys a span is kept for whatever the filter (docs/context.md).
const CONTEXT_KEYS: &[&str] = &["request_id", "trace_id", "user_id", "job_id", "tenant"];

/// What `ContextSnapshot::capture()` carries, in its order.
const SNAPSHOT_KEYS: &[&str] = CONTEXT_KEYS;

const SERVICE: &str = "svc";

/// The value of the line logged before each program.
const RESET: &str = "reset";

/// Picks a field's value of the template's type (a program always gives
/// the template's type; a `None` declares the field without a value).
trait Pick<'a>: Sized {
    fn pick(v: Option<&'a Option<Val>>) -> Option<Self>;
}
impl<'a> Pick<'a> for &'a str {
    fn pick(v: Option<&'a Option<Val>>) -> Option<Self> {
        match v {
            Some(Some(Val::S(s))) => Some(s.as_str()),
            _ => None,
        }
    }
}
impl Pick<'_> for i64 {
    fn pick(v: Option<&Option<Val>>) -> Option<Self> {
        match v {
            Some(Some(Val::I(n))) => Some(*n),
            _ => None,
        }
    }
}

/// `tracing`'s levels must be constants at the callsite: one arm per level.
macro_rules! at_level {
    ($level:expr, $L:ident => $body:expr) => {
        match $level {
            Lvl::Trace => {
                const $L: tracing::Level = tracing::Level::TRACE;
                $body
            }
            Lvl::Debug => {
                const $L: tracing::Level = tracing::Level::DEBUG;
                $body
            }
            Lvl::Info => {
                const $L: tracing::Level = tracing::Level::INFO;
                $body
            }
            Lvl::Warn => {
                const $L: tracing::Level = tracing::Level::WARN;
                $body
            }
            Lvl::Error => {
                const $L: tracing::Level = tracing::Level::ERROR;
                $body
            }
        }
    };
}

macro_rules! ty {
    (S) => {
        &str
    };
    (I) => {
        i64
    };
}

/// Field names are static in tracing: a fixed set of templates, each a
/// macro call per level and parent form. An `Option` value that is `None`
/// records nothing, exactly as `tracing::field::Empty`.
macro_rules! shapes {
    (spans { $($si:literal => [$($sk:ident : $st:ident),*]),* $(,)? }
     events { $($ei:literal => [$($ek:ident : $et:ident),*]),* $(,)? }) => {
        const SPAN_SHAPES: &[&[(&str, Ty)]] = &[$(&[$((stringify!($sk), Ty::$st)),*]),*];
        const EVENT_SHAPES: &[&[(&str, Ty)]] = &[$(&[$((stringify!($ek), Ty::$et)),*]),*];

        fn make_span(shape: u8, level: Lvl, parent: Option<Option<Id>>, vals: &[Option<Val>]) -> Span {
            match usize::from(shape) % SPAN_SHAPES.len() {
                $($si => {
                    let mut _it = vals.iter();
                    $(let $sk: Option<ty!($st)> = Pick::pick(_it.next());)*
                    at_level!(level, L => match parent {
                        Some(p) => tracing::span!(parent: p, L, "span", $($sk = $sk),*),
                        None => tracing::span!(L, "span", $($sk = $sk),*),
                    })
                })*
                _ => unreachable!(),
            }
        }

        fn make_event(shape: u8, level: Lvl, parent: Option<Option<Id>>, seq: i64, vals: &[Option<Val>]) {
            match usize::from(shape) % EVENT_SHAPES.len() {
                $($ei => {
                    let mut _it = vals.iter();
                    $(let $ek: Option<ty!($et)> = Pick::pick(_it.next());)*
                    at_level!(level, L => match parent {
                        Some(p) => tracing::event!(parent: p, L, seq, $($ek = $ek,)* "ev"),
                        None => tracing::event!(L, seq, $($ek = $ek,)* "ev"),
                    })
                })*
                _ => unreachable!(),
            }
        }
    };
}

shapes! {
    spans {
        0 => [],
        1 => [k0: S],
        2 => [k0: I, k1: S],
        3 => [user_id: I],
        4 => [request_id: S, k1: I],
        5 => [job_id: S, k2: S],
        6 => [k1: S, service: S, user_id: S],
        7 => [k2: I, k0: S],
        8 => [k1: S, k2: S],
        9 => [job_id: I, k0: I],
    }
    events {
        0 => [],
        1 => [k0: S],
        2 => [user_id: I],
        3 => [k1: I, job_id: S],
        4 => [request_id: S, k2: S, service: I],
        5 => [k2: I, k0: I],
    }
}

/// The fields of a handle: a span of a shape, detached work, a restored job.
#[derive(Clone, Copy, Debug)]
enum Kind {
    Shape(u8),
    Detached,
    Restored,
}

impl Kind {
    fn fields(self) -> Vec<&'static str> {
        match self {
            Kind::Shape(s) => SPAN_SHAPES[usize::from(s) % SPAN_SHAPES.len()]
                .iter()
                .map(|(k, _)| *k)
                .collect(),
            Kind::Detached => Vec::new(),
            Kind::Restored => vec!["task"],
        }
    }
}

// ---- generation ----

fn lvl() -> impl Strategy<Value = Lvl> {
    prop::sample::select(Lvl::ALL.to_vec())
}

fn parent() -> impl Strategy<Value = Parent> {
    prop_oneof![
        6 => Just(Parent::Current),
        2 => any::<u8>().prop_map(Parent::Of),
        1 => Just(Parent::Root),
    ]
}

/// A placeholder of type `ty`; [`number`] gives it its unique value.
fn blank(ty: Ty) -> Val {
    match ty {
        Ty::S => Val::S(String::new()),
        Ty::I => Val::I(0),
    }
}

fn op(depth: u32) -> BoxedStrategy<Op> {
    let span = (
        0..SPAN_SHAPES.len() as u8,
        lvl(),
        parent(),
        prop::collection::vec(prop::bool::weighted(0.7), 3),
    )
        .prop_map(|(shape, level, parent, present)| Op::Span {
            shape,
            level,
            parent,
            vals: SPAN_SHAPES[usize::from(shape)]
                .iter()
                .zip(present)
                .map(|((_, ty), p)| p.then(|| blank(*ty)))
                .collect(),
        });
    let event = (
        0..EVENT_SHAPES.len() as u8,
        lvl(),
        parent(),
        prop::collection::vec(prop::bool::weighted(0.9), 3),
    )
        .prop_map(|(shape, level, parent, present)| Op::Event {
            shape,
            level,
            parent,
            seq: 0,
            vals: EVENT_SHAPES[usize::from(shape)]
                .iter()
                .zip(present)
                .map(|((_, ty), p)| p.then(|| blank(*ty)))
                .collect(),
        });
    let val = any::<bool>().prop_map(|int| blank(if int { Ty::I } else { Ty::S }));
    let record = (any::<u8>(), any::<u8>(), val.clone())
        .prop_map(|(span, field, val)| Op::Record { span, field, val });
    let set = (0..KEYS.len() as u8, val).prop_map(|(key, val)| Op::Set { key, val });
    let leaf = prop_oneof![
        6 => event,
        4 => span,
        4 => any::<u8>().prop_map(Op::Enter),
        2 => Just(Op::Exit),
        3 => record,
        3 => set,
        1 => Just(Op::Detach),
        1 => Just(Op::Restore),
        2 => any::<u8>().prop_map(Op::DropHandle),
    ];
    if depth == 0 {
        return leaf.boxed();
    }
    let body = || prop::collection::vec(op(depth - 1), 0..6);
    prop_oneof![
        20 => leaf,
        1 => body().prop_map(Op::Thread),
        1 => body().prop_map(Op::InScope),
    ]
    .boxed()
}

fn program() -> BoxedStrategy<Vec<Op>> {
    prop::collection::vec(op(2), 1..28)
        .prop_map(|mut ops| {
            let mut next = 0;
            number(&mut ops, &mut next);
            ops
        })
        .boxed()
}

/// Gives every value and `seq` a number of its own, in execution order.
fn number(ops: &mut [Op], next: &mut i64) {
    fn fill(v: &mut Val, next: &mut i64) {
        *next += 1;
        match v {
            // Every third string too long for a pair kept in its entry
            // (`Slot::Small`): a span's fields mix both kinds of slot.
            Val::S(s) if *next % 3 == 0 => *s = format!("v{next}-{}", "long".repeat(8)),
            Val::S(s) => *s = format!("v{next}"),
            Val::I(n) => *n = *next,
        }
    }
    for op in ops {
        match op {
            Op::Span { vals, .. } => vals.iter_mut().flatten().for_each(|v| fill(v, next)),
            Op::Record { val, .. } | Op::Set { val, .. } => fill(val, next),
            Op::Event { seq, vals, .. } => {
                *next += 1;
                *seq = *next;
                vals.iter_mut().flatten().for_each(|v| fill(v, next));
            }
            Op::Thread(body) | Op::InScope(body) => number(body, next),
            _ => {}
        }
    }
}

// ---- printing ----

/// The program as Rust-like code, handles resolved (`s3`), for reports.
fn show(ops: &[Op]) -> String {
    let mut out = String::new();
    show_block(ops, 1, &mut Vec::new(), &mut out);
    out
}

fn show_block(ops: &[Op], indent: usize, handles: &mut Vec<Kind>, out: &mut String) {
    let pad = "    ".repeat(indent);
    let fields = |shape: &[(&str, Ty)], vals: &[Option<Val>]| {
        shape
            .iter()
            .zip(vals)
            .map(|((k, _), v)| match v {
                Some(v) => format!(", {k} = {}", v.code()),
                None => format!(", {k} = Empty"),
            })
            .collect::<String>()
    };
    // The handles this block entered, to name what `Exit` leaves.
    let mut entered: Vec<usize> = Vec::new();
    for op in ops {
        let n = handles.len();
        let handle = |h: u8| (n > 0).then(|| usize::from(h) % n);
        let name = |h: u8| handle(h).map_or("<no span yet>".to_string(), |i| format!("s{i}"));
        let parent = |p: &Parent| match p {
            Parent::Current => String::new(),
            Parent::Of(h) if n > 0 => format!("parent: &{}, ", name(*h)),
            Parent::Of(_) | Parent::Root => "parent: None, ".to_string(),
        };
        let line = match op {
            Op::Span {
                shape,
                level,
                parent: p,
                vals,
            } => {
                handles.push(Kind::Shape(*shape));
                format!(
                    "let s{n} = {}_span!({}\"span\"{});",
                    level.macro_name(),
                    parent(p),
                    fields(SPAN_SHAPES[usize::from(*shape)], vals)
                )
            }
            Op::Enter(h) => match handle(*h) {
                Some(i) => {
                    entered.push(i);
                    format!("let _e = s{i}.clone().entered();")
                }
                None => "// enter: no span yet".to_string(),
            },
            Op::Exit => match entered.pop() {
                Some(i) => format!("drop(_e); // exits s{i}"),
                None => "// exit: nothing entered in this block".to_string(),
            },
            Op::Record { span, field, val } => match handle(*span) {
                Some(i) => {
                    let names = handles[i].fields();
                    match names.get(usize::from(*field) % names.len().max(1)) {
                        Some(f) => format!("s{i}.record({f:?}, {});", val.code()),
                        None => format!("// s{i} has no field to record"),
                    }
                }
                None => "// record: no span yet".to_string(),
            },
            Op::Set { key, val } => format!(
                "spanline::set({:?}, {});",
                KEYS[usize::from(*key)],
                val.code()
            ),
            Op::Event {
                shape,
                level,
                parent: p,
                seq,
                vals,
            } => format!(
                "{}!({}seq = {seq}{}, \"ev\");",
                level.macro_name(),
                parent(p),
                fields(EVENT_SHAPES[usize::from(*shape)], vals)
            ),
            Op::Thread(body) | Op::InScope(body) => {
                let what = if matches!(op, Op::Thread(_)) {
                    "spanline::context::thread::spawn(move || {"
                } else {
                    "spanline::context::capture().in_scope(|| {"
                };
                let _ = writeln!(out, "{pad}{what}");
                show_block(body, indent + 1, handles, out);
                let _ = writeln!(
                    out,
                    "{pad}}}){};",
                    if matches!(op, Op::Thread(_)) {
                        ".join()"
                    } else {
                        ""
                    }
                );
                continue;
            }
            Op::Detach => {
                handles.push(Kind::Detached);
                format!("let s{n} = spanline::context::capture().detached();")
            }
            Op::Restore => {
                handles.push(Kind::Restored);
                format!("let s{n} = roundtrip(ContextSnapshot::capture()).restore(\"task\"); // through serde JSON")
            }
            Op::DropHandle(h) => match handle(*h) {
                Some(i) => format!("drop(s{i}); // the handle: s{i} is Span::none() from here"),
                None => "// drop: no span yet".to_string(),
            },
        };
        let _ = writeln!(out, "{pad}{line}");
    }
}

// ---- minimizing ----

/// Rewrites every handle reference to the index it resolves to, so that
/// removing a span can renumber the references after it.
fn canonical(ops: &mut [Op], n: &mut usize) {
    let fix = |h: &mut u8, n: usize| {
        if n > 0 {
            *h = (usize::from(*h) % n) as u8;
        }
    };
    for op in ops {
        match op {
            Op::Span { parent, .. } => {
                if let Parent::Of(h) = parent {
                    fix(h, *n);
                }
                *n += 1;
            }
            Op::Event {
                parent: Parent::Of(h),
                ..
            }
            | Op::Enter(h)
            | Op::DropHandle(h)
            | Op::Record { span: h, .. } => fix(h, *n),
            Op::Thread(body) | Op::InScope(body) => canonical(body, n),
            Op::Detach | Op::Restore => *n += 1,
            _ => {}
        }
    }
}

fn creates_handle(op: &Op) -> bool {
    matches!(op, Op::Span { .. } | Op::Detach | Op::Restore)
}

/// Every op's path (indices into nested bodies), in execution order.
fn paths(ops: &[Op], prefix: &mut Vec<usize>, out: &mut Vec<Vec<usize>>) {
    for (i, op) in ops.iter().enumerate() {
        prefix.push(i);
        out.push(prefix.clone());
        if let Op::Thread(body) | Op::InScope(body) = op {
            paths(body, prefix, out);
        }
        prefix.pop();
    }
}

fn at<'a>(ops: &'a mut Vec<Op>, path: &[usize]) -> (&'a mut Vec<Op>, usize) {
    match path {
        [i] => (ops, *i),
        [i, rest @ ..] => match &mut ops[*i] {
            Op::Thread(body) | Op::InScope(body) => at(body, rest),
            _ => unreachable!("a path goes through blocks"),
        },
        [] => unreachable!("an empty path"),
    }
}

/// Which handle the op at `path` creates, if it creates one.
fn handle_at(ops: &[Op], path: &[usize]) -> Option<usize> {
    let mut all = Vec::new();
    paths(ops, &mut Vec::new(), &mut all);
    let mut n = 0;
    for p in all {
        let mut ops = ops.to_vec();
        let (block, i) = at(&mut ops, &p);
        if creates_handle(&block[i]) {
            if p == path {
                return Some(n);
            }
            n += 1;
        }
    }
    None
}

/// References to handle `k`: `None` if some op uses it; else the program
/// with the references above `k` moved down by one.
fn renumber(ops: &mut [Op], k: usize) -> bool {
    let mut ok = true;
    let mut fix = |h: &mut u8| match usize::from(*h).cmp(&k) {
        std::cmp::Ordering::Equal => ok = false,
        std::cmp::Ordering::Greater => *h -= 1,
        std::cmp::Ordering::Less => {}
    };
    fn walk(ops: &mut [Op], fix: &mut dyn FnMut(&mut u8)) {
        for op in ops {
            match op {
                Op::Span {
                    parent: Parent::Of(h),
                    ..
                }
                | Op::Event {
                    parent: Parent::Of(h),
                    ..
                }
                | Op::Enter(h)
                | Op::DropHandle(h)
                | Op::Record { span: h, .. } => fix(h),
                Op::Thread(body) | Op::InScope(body) => walk(body, fix),
                _ => {}
            }
        }
    }
    walk(ops, &mut fix);
    ok
}

/// Smaller variants of `ops`: each op removed (its handle's users first),
/// a block spliced into its place, an event's fields dropped.
fn candidates(ops: &[Op]) -> Vec<Vec<Op>> {
    let mut all = Vec::new();
    paths(ops, &mut Vec::new(), &mut all);
    let mut out = Vec::new();
    for path in all.iter().rev() {
        let handle = handle_at(ops, path);
        let mut removed = ops.to_vec();
        let (block, i) = at(&mut removed, path);
        let op = block.remove(i);
        if handle.is_none_or(|k| renumber(&mut removed, k)) {
            out.push(removed);
        }
        match op {
            Op::Thread(body) | Op::InScope(body) => {
                let mut spliced = ops.to_vec();
                let (block, i) = at(&mut spliced, path);
                block.splice(i..=i, body);
                out.push(spliced);
            }
            Op::Event { shape, vals, .. } => {
                let from = EVENT_SHAPES[usize::from(shape)];
                for (to, fields) in smaller_shapes(EVENT_SHAPES, from, &vals) {
                    let mut fewer = ops.to_vec();
                    let (block, i) = at(&mut fewer, path);
                    if let Op::Event { shape, vals, .. } = &mut block[i] {
                        (*shape, *vals) = (to, fields);
                    }
                    out.push(fewer);
                }
            }
            Op::Span {
                shape, level, vals, ..
            } => {
                let from = SPAN_SHAPES[usize::from(shape)];
                for (to, fields) in smaller_shapes(SPAN_SHAPES, from, &vals) {
                    let mut fewer = ops.to_vec();
                    let (block, i) = at(&mut fewer, path);
                    if let Op::Span { shape, vals, .. } = &mut block[i] {
                        (*shape, *vals) = (to, fields);
                    }
                    out.push(fewer);
                }
                if level != Lvl::Info {
                    let mut info = ops.to_vec();
                    let (block, i) = at(&mut info, path);
                    if let Op::Span { level, .. } = &mut block[i] {
                        *level = Lvl::Info;
                    }
                    out.push(info);
                }
            }
            _ => {}
        }
    }
    out
}

/// The shapes with fewer fields, each a subset of `from`'s with the same
/// types, with `from`'s values for them.
fn smaller_shapes(
    shapes: &[&[(&str, Ty)]],
    from: &[(&str, Ty)],
    vals: &[Option<Val>],
) -> Vec<(u8, Vec<Option<Val>>)> {
    let mut out = Vec::new();
    for (i, to) in shapes.iter().enumerate() {
        if to.len() >= from.len() || !to.iter().all(|f| from.contains(f)) {
            continue;
        }
        let fields = to
            .iter()
            .map(|f| {
                let at = from.iter().position(|g| g == f)?;
                vals.get(at).cloned().flatten()
            })
            .collect();
        out.push((i as u8, fields));
    }
    out
}

/// Removes what the class does not need, after proptest's shrinking
/// (which cannot drop a span without moving every reference after it).
fn minimize(
    mut ops: Vec<Op>,
    mut shows: impl FnMut(&[Op]) -> Option<Vec<Mismatch>>,
    mut found: Vec<Mismatch>,
) -> (Vec<Op>, Vec<Mismatch>) {
    canonical(&mut ops, &mut 0);
    let deadline = Instant::now() + SHRINK_TIME;
    'outer: loop {
        for mut candidate in candidates(&ops) {
            if Instant::now() > deadline {
                break 'outer;
            }
            number(&mut candidate, &mut 0);
            if let Some(f) = shows(&candidate) {
                ops = candidate;
                found = f;
                continue 'outer;
            }
        }
        break;
    }
    (ops, found)
}

// ==== the model ====

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Filter {
    Trace,
    Warn,
}

impl Filter {
    fn directive(self) -> &'static str {
        match self {
            Filter::Trace => "trace",
            Filter::Warn => "warn",
        }
    }

    fn enables(self, level: Lvl) -> bool {
        match self {
            Filter::Trace => true,
            Filter::Warn => level >= Lvl::Warn,
        }
    }
}

#[derive(Clone, Debug)]
enum MSlot {
    Fixed(Val),
    /// A late slot, shared by the spans that carry it.
    Late(usize),
}

/// One span's fields as a descendant sees them.
#[derive(Clone, Debug)]
struct Frame {
    owner: usize,
    entries: Vec<(String, MSlot)>,
    /// Copied into a detached span (for naming mismatches).
    copied: bool,
}

#[derive(Clone, Debug)]
struct MSpan {
    exists: bool,
    kind: Kind,
    /// The span's own fields (live: recording changes them).
    own: Frame,
    /// Its ancestors' fields, nearest first, copied at creation (late slots
    /// by reference).
    up: Vec<Frame>,
    /// Where keys bound with `set` live (one set per root).
    root: usize,
    /// Exists only because of the INFO rule (for classifying mismatches).
    info_rule: bool,
    /// Its parent in the registry (which it holds open).
    parent: Option<usize>,
    /// What holds it open: its handle, guards and threads in it, children.
    refs: usize,
    /// The program dropped its handle.
    dropped: bool,
    /// The job ids handed on while it or a descendant was current, and how
    /// (docs/redis.md: the span does not end such a job).
    handed: BTreeMap<String, &'static str>,
    /// The span `hand_off_job` marks: the outermost one carrying the job
    /// when it is handed on, whatever job it carries later. Only to name a
    /// case the rule leaves open when the code and the model disagree.
    marked: bool,
}

/// What the close of a span that carries a job means for the job.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Outcome {
    /// The outermost span of the job's run: one `job ended` line.
    End,
    /// The job was handed on from the span (a snapshot, detached work).
    HandedOn(&'static str),
    /// Its parent carries the same job: not the job's outermost span.
    Inner,
}

/// The close of a span that carries a job id (one that can name a channel).
#[derive(Clone, Debug)]
struct JobClose {
    job: String,
    /// Lines logged before the close: `Expect::lines[..at]`.
    at: usize,
    outcome: Outcome,
    /// Which span closed, and where its job id came from (for naming).
    how: String,
    /// The code's marker (see `MSpan::marked`) says otherwise: the case
    /// the program hits, which the rule does not spell out.
    unclear: Option<&'static str>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
enum SetOutcome {
    Ok,
    NoSpan,
    NoContextLayer,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Origin {
    Fixed,
    Late,
    Bound,
    Static,
}

#[derive(Clone, Debug)]
struct CtxVal {
    val: Val,
    origin: Origin,
    /// An unrecorded `Empty` field nearer the event was passed over.
    past_empty: bool,
    /// How the value got there, when it matters for naming a mismatch:
    /// `set` filled an `Empty` field, `detached()` copied it.
    note: &'static str,
}

#[derive(Clone, Debug)]
struct ExpLine {
    seq: i64,
    level: Lvl,
    written: bool,
    /// The event's own recorded fields, `seq` first.
    fields: Vec<(String, Val)>,
    /// The whole context (span values, bound keys, static fields), before
    /// the event's fields override it.
    ctx: BTreeMap<String, CtxVal>,
    /// The context's `job_id` when it can name a channel.
    job: Option<String>,
    /// A span on the line's path exists only by the INFO rule.
    info_rule: bool,
    /// The event's fields declared without a value.
    unrecorded: Vec<String>,
}

impl ExpLine {
    /// What the line carries besides the reserved keys: the event's fields,
    /// then each context key the event does not define.
    fn expected(&self) -> Vec<(String, Val, Option<&CtxVal>)> {
        let mut out: Vec<_> = self
            .fields
            .iter()
            .map(|(k, v)| (k.clone(), v.clone(), None))
            .collect();
        for (k, c) in &self.ctx {
            if !self.fields.iter().any(|(f, _)| f == k) {
                out.push((k.clone(), c.val.clone(), Some(c)));
            }
        }
        out
    }
}

#[derive(Debug, Default)]
struct Expect {
    lines: Vec<ExpLine>,
    sets: Vec<SetOutcome>,
    /// Every close of a span carrying a job, in order; the ends are the
    /// `job ended` lines a Redis layer publishes (docs/redis.md).
    closes: Vec<JobClose>,
}

impl Expect {
    fn ends(&self) -> impl Iterator<Item = &JobClose> {
        self.closes.iter().filter(|c| c.outcome == Outcome::End)
    }
}

/// A `job_id` as a channel name, when it can be one (docs/redis.md: valid
/// ids only; a number as its digits).
fn channel_job(id: String) -> Option<String> {
    ((1..=100).contains(&id.len())
        && id != "global"
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_:-".contains(&b)))
    .then_some(id)
}

struct Model {
    filter: Filter,
    spans: Vec<MSpan>,
    /// Late slots: the value, and whether `set` filled it.
    slots: Vec<Option<(Val, bool)>>,
    /// Bound keys per root: the value, and whether `detached()` copied it.
    bound: Vec<Vec<(String, Val, bool)>>,
    out: Expect,
}

/// The registry's span stack: `None` for a span entered that does not
/// exist (entering it does nothing), `dup` for a span entered again (the
/// registry does not make it current again).
type Stack = Vec<Option<(usize, bool)>>;

impl Model {
    fn run(filter: Filter, ops: &[Op]) -> Expect {
        let mut model = Model {
            filter,
            spans: Vec::new(),
            slots: Vec::new(),
            bound: Vec::new(),
            out: Expect::default(),
        };
        let mut stack = Stack::new();
        model.block(ops, &mut stack);
        // The program's end: its handles drop in order (a span closes when
        // its last holder lets go; a child's close lets go of its parent).
        for i in 0..model.spans.len() {
            if model.spans[i].exists && !model.spans[i].dropped {
                model.spans[i].dropped = true;
                model.release(i);
            }
        }
        debug_assert!(model.spans.iter().all(|s| s.refs == 0));
        model.out
    }

    /// The span is held once more (a guard, a thread, a child).
    fn hold(&mut self, entry: Option<(usize, bool)>) {
        if let Some((i, _)) = entry {
            self.spans[i].refs += 1;
        }
    }

    /// A guard or thread lets go of the span.
    fn unhold(&mut self, entry: Option<(usize, bool)>) {
        if let Some((i, _)) = entry {
            self.release(i);
        }
    }

    fn release(&mut self, i: usize) {
        self.spans[i].refs -= 1;
        if self.spans[i].refs == 0 {
            self.close(i);
        }
    }

    /// The job id in the span's context now, when it can name a channel.
    fn job_of(&self, span: usize) -> Option<String> {
        channel_job(self.resolve(span, "job_id")?.val.text())
    }

    /// The span closes (docs/redis.md, "What counts as a job's end"): it
    /// ends its job when its parent does not carry the same job and the
    /// job was not handed on from it; then it lets go of its parent.
    fn close(&mut self, i: usize) {
        if let Some(job) = self.job_of(i) {
            let parent = self.spans[i].parent;
            let inner = parent.is_some_and(|p| self.job_of(p).as_deref() == Some(job.as_str()));
            let outcome = match self.spans[i].handed.get(&job) {
                _ if inner => Outcome::Inner,
                Some(how) => Outcome::HandedOn(how),
                None => Outcome::End,
            };
            let marker_ends = !inner && !self.spans[i].marked;
            let unclear = match outcome {
                Outcome::End if !marker_ends => Some(
                    "the span was handed on for a job id it no longer carries (its job_id changed after the hand-off)",
                ),
                Outcome::HandedOn(_) if marker_ends => Some(
                    "the job was handed on while a span above carried it too; that span carries another job_id at the close",
                ),
                _ => None,
            };
            let how = self.close_how(i);
            self.out.closes.push(JobClose {
                job,
                at: self.out.lines.len(),
                outcome,
                how,
                unclear,
            });
        }
        if let Some(p) = self.spans[i].parent {
            self.release(p);
        }
    }

    /// Which span closed, and where its job id came from.
    fn close_how(&self, i: usize) -> String {
        let span = &self.spans[i];
        match span.kind {
            Kind::Detached => "a detached root's close".into(),
            Kind::Restored => "a restored root's close".into(),
            Kind::Shape(_) => {
                let own = span.own.entries.iter().any(|(k, slot)| {
                    k == "job_id"
                        && match slot {
                            MSlot::Fixed(_) => true,
                            MSlot::Late(s) => self.slots[*s].is_some(),
                        }
                });
                let from = match self.resolve(i, "job_id").map(|c| (c.origin, c.note)) {
                    Some((Origin::Bound, _)) => "a job_id bound with set",
                    Some((_, " (filled by set)")) => "its Empty job_id filled by set",
                    Some((Origin::Late, _)) if own => "its Empty job_id recorded",
                    Some((Origin::Late, _)) => "an Empty job_id above it recorded",
                    _ if own => "its job_id field",
                    _ => "a job_id copied from its parent, which changed it since",
                };
                let root = if span.parent.is_none() {
                    "a root"
                } else {
                    "a span"
                };
                format!("the close of {root} with {from}")
            }
        }
    }

    /// The job of `cur` is handed on (`ContextSnapshot::capture`,
    /// `capture().detached()`): from `cur` and every span above it.
    fn hand_on(&mut self, cur: usize, how: &'static str) {
        let Some(job) = self.job_of(cur) else { return };
        let mut span = Some(cur);
        while let Some(i) = span {
            self.spans[i].handed.entry(job.clone()).or_insert(how);
            span = self.spans[i].parent;
        }
        // What `hand_off_job` marks: the outermost span carrying the job now.
        let mut outermost = cur;
        while let Some(p) = self.spans[outermost].parent {
            if self.job_of(p).as_deref() != Some(job.as_str()) {
                break;
            }
            outermost = p;
        }
        self.spans[outermost].marked = true;
    }

    fn current(stack: &Stack) -> Option<usize> {
        stack
            .iter()
            .rev()
            .flatten()
            .find(|(_, dup)| !dup)
            .map(|(h, _)| *h)
    }

    fn handle(&self, h: u8) -> Option<usize> {
        (!self.spans.is_empty()).then(|| usize::from(h) % self.spans.len())
    }

    /// The span an explicit or contextual parent names, if it exists.
    fn parent_of(&self, parent: Parent, stack: &Stack) -> Option<usize> {
        match parent {
            Parent::Current => Self::current(stack),
            Parent::Of(h) => self.handle(h).filter(|&i| self.live_handle(i)),
            Parent::Root => None,
        }
    }

    /// The handle still names the span (it exists, its handle not dropped).
    fn live_handle(&self, i: usize) -> bool {
        self.spans[i].exists && !self.spans[i].dropped
    }

    fn new_root(&mut self, keys: Vec<(String, Val, bool)>) -> usize {
        self.bound.push(keys);
        self.bound.len() - 1
    }

    fn push_span(
        &mut self,
        kind: Kind,
        exists: bool,
        own: Vec<(String, MSlot)>,
        parent: Option<usize>,
        info_rule: bool,
    ) {
        let owner = self.spans.len();
        if let (true, Some(p)) = (exists, parent) {
            self.spans[p].refs += 1;
        }
        let (up, root) = match parent {
            Some(p) => {
                let p = &self.spans[p];
                (
                    std::iter::once(p.own.clone())
                        .chain(p.up.iter().cloned())
                        .collect(),
                    p.root,
                )
            }
            None => (Vec::new(), self.new_root(Vec::new())),
        };
        self.spans.push(MSpan {
            exists,
            kind,
            own: Frame {
                owner,
                entries: own,
                copied: false,
            },
            up,
            root,
            info_rule,
            parent: parent.filter(|_| exists),
            refs: usize::from(exists),
            dropped: false,
            handed: BTreeMap::new(),
            marked: false,
        });
    }

    fn frames(&self, span: usize) -> impl Iterator<Item = &Frame> {
        let s = &self.spans[span];
        std::iter::once(&s.own).chain(s.up.iter())
    }

    /// Rules 1 and 4: the nearest span with a value, then the root's bound keys.
    fn resolve(&self, span: usize, key: &str) -> Option<CtxVal> {
        let mut past_empty = false;
        for frame in self.frames(span) {
            for (k, slot) in &frame.entries {
                if k != key {
                    continue;
                }
                let copied = if frame.copied {
                    " (copied by detached())"
                } else {
                    ""
                };
                match slot {
                    MSlot::Fixed(v) => {
                        return Some(CtxVal {
                            val: v.clone(),
                            origin: Origin::Fixed,
                            past_empty,
                            note: copied,
                        })
                    }
                    MSlot::Late(i) => match &self.slots[*i] {
                        Some((v, by_set)) => {
                            return Some(CtxVal {
                                val: v.clone(),
                                origin: Origin::Late,
                                past_empty,
                                note: if *by_set { " (filled by set)" } else { copied },
                            })
                        }
                        None => past_empty = true,
                    },
                }
            }
        }
        let bound = &self.bound[self.spans[span].root];
        bound
            .iter()
            .find(|(k, _, _)| k == key)
            .map(|(_, v, copied)| CtxVal {
                val: v.clone(),
                origin: Origin::Bound,
                past_empty,
                note: if *copied {
                    " (copied by detached())"
                } else {
                    ""
                },
            })
    }

    /// Every key of the span's context with its value.
    fn context(&self, span: Option<usize>) -> BTreeMap<String, CtxVal> {
        let mut ctx = BTreeMap::new();
        if let Some(span) = span {
            let keys: BTreeSet<&str> = self
                .frames(span)
                .flat_map(|f| f.entries.iter().map(|(k, _)| k.as_str()))
                .chain(
                    self.bound[self.spans[span].root]
                        .iter()
                        .map(|(k, _, _)| k.as_str()),
                )
                .collect();
            for key in keys {
                if let Some(v) = self.resolve(span, key) {
                    ctx.insert(key.to_string(), v);
                }
            }
        }
        ctx.entry("service".to_string()).or_insert(CtxVal {
            val: Val::S(SERVICE.into()),
            origin: Origin::Static,
            past_empty: false,
            note: "",
        });
        ctx
    }

    fn block(&mut self, ops: &[Op], stack: &mut Stack) {
        let base = stack.len();
        for op in ops {
            self.step(op, stack, base);
        }
        // Innermost first, as the runner's guards drop.
        while stack.len() > base {
            let entry = stack.pop().flatten();
            self.unhold(entry);
        }
    }

    fn step(&mut self, op: &Op, stack: &mut Stack, base: usize) {
        match op {
            Op::Span {
                shape,
                level,
                parent,
                vals,
            } => {
                let fields = SPAN_SHAPES[usize::from(*shape)];
                // Rule 6: kept at INFO and above, with a context key, or when
                // the filter enables it.
                let has_key = fields.iter().any(|(k, _)| CONTEXT_KEYS.contains(k));
                let by_filter = self.filter.enables(*level);
                let exists = by_filter || has_key || *level >= Lvl::Info;
                let info_rule = exists && !by_filter && !has_key;
                let mut own = Vec::new();
                for ((k, _), v) in fields.iter().zip(vals) {
                    let slot = match v {
                        Some(v) => MSlot::Fixed(v.clone()),
                        None => {
                            self.slots.push(None);
                            MSlot::Late(self.slots.len() - 1)
                        }
                    };
                    own.push((k.to_string(), slot));
                }
                let parent = self.parent_of(*parent, stack);
                self.push_span(Kind::Shape(*shape), exists, own, parent, info_rule);
            }
            Op::Enter(h) => {
                if let Some(i) = self.handle(*h) {
                    let entry = self
                        .live_handle(i)
                        .then(|| (i, stack.iter().flatten().any(|(j, _)| *j == i)));
                    self.hold(entry);
                    stack.push(entry);
                }
            }
            Op::Exit => {
                if stack.len() > base {
                    let entry = stack.pop().flatten();
                    self.unhold(entry);
                }
            }
            Op::DropHandle(h) => {
                if let Some(i) = self.handle(*h) {
                    if self.live_handle(i) {
                        self.spans[i].dropped = true;
                        self.release(i);
                    }
                }
            }
            Op::Record { span, field, val } => {
                let Some(i) = self.handle(*span) else { return };
                let fields = self.spans[i].kind.fields();
                if !self.live_handle(i) || fields.is_empty() {
                    return;
                }
                let name = fields[usize::from(*field) % fields.len()];
                let own = &mut self.spans[i].own.entries;
                if let Some((_, slot)) = own.iter_mut().find(|(k, _)| k == name) {
                    match slot {
                        // Rule 4: shared with every span that carries it.
                        MSlot::Late(s) => self.slots[*s] = Some((val.clone(), false)),
                        // Rule 3: this span's later lines and children.
                        MSlot::Fixed(v) => *v = val.clone(),
                    }
                }
            }
            Op::Set { key, val } => {
                let key = KEYS[usize::from(*key)];
                let Some(cur) = Self::current(stack) else {
                    self.out.sets.push(SetOutcome::NoSpan);
                    return;
                };
                self.out.sets.push(SetOutcome::Ok);
                // Rule 5: the nearest declaration decides.
                let declared = self
                    .frames(cur)
                    .find_map(|f| f.entries.iter().find(|(k, _)| k == key))
                    .map(|(_, slot)| slot.clone());
                if let Some(MSlot::Late(s)) = declared {
                    self.slots[s] = Some((val.clone(), true));
                    return;
                }
                let bound = &mut self.bound[self.spans[cur].root];
                bound.retain(|(k, _, _)| k != key);
                bound.push((key.to_string(), val.clone(), false));
            }
            Op::Event {
                shape,
                level,
                parent,
                seq,
                vals,
            } => {
                let span = self.parent_of(*parent, stack);
                let mut fields = vec![("seq".to_string(), Val::I(*seq))];
                let mut unrecorded = Vec::new();
                for ((k, _), v) in EVENT_SHAPES[usize::from(*shape)].iter().zip(vals) {
                    match v {
                        Some(v) => fields.push((k.to_string(), v.clone())),
                        None => unrecorded.push(k.to_string()),
                    }
                }
                let ctx = self.context(span);
                // Rule 11: the context's job_id (not an event field), when its
                // text can name a channel, as docs/redis.md says.
                let job = ctx
                    .get("job_id")
                    .filter(|c| c.origin != Origin::Static)
                    .and_then(|c| channel_job(c.val.text()));
                let info_rule = span.is_some_and(|s| {
                    self.spans[s].info_rule || self.frames(s).any(|f| self.spans[f.owner].info_rule)
                }) || matches!(parent, Parent::Of(h) if self.handle(*h).is_some_and(|i| self.spans[i].info_rule))
                    || stack
                        .iter()
                        .flatten()
                        .any(|(i, _)| self.spans[*i].info_rule);
                self.out.lines.push(ExpLine {
                    seq: *seq,
                    level: *level,
                    written: self.filter.enables(*level),
                    fields,
                    ctx,
                    job,
                    info_rule,
                    unrecorded,
                });
            }
            Op::Thread(body) => {
                // A new thread: its stack holds the captured span only.
                // (The thread holds the span until it ends.)
                let mut inner: Stack = Self::current(stack)
                    .map(|c| Some((c, false)))
                    .into_iter()
                    .collect();
                inner.iter().for_each(|e| self.hold(*e));
                self.block(body, &mut inner);
                inner.iter().for_each(|e| self.unhold(*e));
            }
            Op::InScope(body) => {
                let cur = Self::current(stack);
                let entry = cur.map(|c| (c, true));
                self.hold(entry);
                stack.push(entry);
                self.block(body, stack);
                stack.pop();
                self.unhold(entry);
            }
            Op::Detach => {
                // Rule 8: a new root with a copy of the chain and bound keys.
                let cur = Self::current(stack);
                let keys = cur
                    .map(|c| self.bound[self.spans[c].root].clone())
                    .unwrap_or_default()
                    .into_iter()
                    .map(|(k, v, _)| (k, v, true))
                    .collect();
                let up = cur
                    .map(|c| {
                        self.frames(c)
                            .cloned()
                            .map(|f| Frame { copied: true, ..f })
                            .collect()
                    })
                    .unwrap_or_default();
                let root = self.new_root(keys);
                let owner = self.spans.len();
                self.spans.push(MSpan {
                    exists: true,
                    kind: Kind::Detached,
                    own: Frame {
                        owner,
                        entries: Vec::new(),
                        copied: false,
                    },
                    up,
                    root,
                    info_rule: false,
                    parent: None,
                    refs: 1,
                    dropped: false,
                    handed: BTreeMap::new(),
                    marked: false,
                });
                // The job goes on in the detached root: its close ends it.
                if let Some(c) = cur {
                    self.hand_on(c, "detached work");
                }
            }
            Op::Restore => {
                let cur = Self::current(stack);
                // Rule 9: the allow-listed keys, bound under a new root.
                let keys: Vec<_> = SNAPSHOT_KEYS
                    .iter()
                    .filter_map(|k| Some((k.to_string(), self.resolve(cur?, k)?.val, false)))
                    .collect();
                // A snapshot carrying the job hands it on to the restored root.
                if let (Some(c), true) = (cur, keys.iter().any(|(k, _, _)| k == "job_id")) {
                    self.hand_on(c, "a snapshot");
                }
                let root = self.new_root(keys);
                let owner = self.spans.len();
                self.spans.push(MSpan {
                    exists: true,
                    kind: Kind::Restored,
                    own: Frame {
                        owner,
                        entries: vec![("task".into(), MSlot::Fixed(Val::S("task".into())))],
                        copied: false,
                    },
                    up: Vec::new(),
                    root,
                    info_rule: false,
                    parent: None,
                    refs: 1,
                    dropped: false,
                    handed: BTreeMap::new(),
                    marked: false,
                });
            }
        }
    }
}

// ==== the runner ====

#[derive(Default)]
struct Rt {
    handles: Vec<(Span, Kind)>,
    sets: Vec<SetOutcome>,
}

impl Rt {
    fn handle(&self, h: u8) -> Option<&(Span, Kind)> {
        (!self.handles.is_empty()).then(|| &self.handles[usize::from(h) % self.handles.len()])
    }

    /// `None`: contextual; `Some(id)`: explicit (`None` is a root).
    fn parent(&self, parent: Parent) -> Option<Option<Id>> {
        match parent {
            Parent::Current => None,
            Parent::Of(h) => Some(self.handle(h).and_then(|(s, _)| s.id())),
            Parent::Root => Some(None),
        }
    }
}

/// Runs a program in the current subscriber; returns what `set` said.
fn execute(ops: &[Op]) -> Vec<SetOutcome> {
    // The same state before every program: a layer that leaks the previous
    // event's context then leaks this one, the same way on every run, so
    // such a bug shrinks to a program that shows it on its own.
    tracing::error_span!(target: "model_reset", "reset", k0 = RESET)
        .in_scope(|| tracing::error!(target: "model_reset", "reset"));
    let mut rt = Rt::default();
    block(ops, &mut rt);
    rt.sets
}

fn block(ops: &[Op], rt: &mut Rt) {
    let mut entered: Vec<tracing::span::EnteredSpan> = Vec::new();
    for op in ops {
        match op {
            Op::Span {
                shape,
                level,
                parent,
                vals,
            } => {
                let span = make_span(*shape, *level, rt.parent(*parent), vals);
                rt.handles.push((span, Kind::Shape(*shape)));
            }
            Op::Enter(h) => {
                if let Some((span, _)) = rt.handle(*h) {
                    entered.push(span.clone().entered());
                }
            }
            Op::Exit => {
                entered.pop();
            }
            Op::Record { span, field, val } => {
                if let Some((span, kind)) = rt.handle(*span) {
                    let fields = kind.fields();
                    if !fields.is_empty() {
                        let name = fields[usize::from(*field) % fields.len()];
                        match val {
                            Val::S(s) => span.record(name, s.as_str()),
                            Val::I(n) => span.record(name, *n),
                        };
                    }
                }
            }
            Op::Set { key, val } => {
                let key = KEYS[usize::from(*key)];
                let r = match val {
                    Val::S(s) => spanline::set(key, s.as_str()),
                    Val::I(n) => spanline::set(key, *n),
                };
                rt.sets.push(match r {
                    Ok(()) => SetOutcome::Ok,
                    Err(spanline::SetError::NoSpan) => SetOutcome::NoSpan,
                    Err(_) => SetOutcome::NoContextLayer,
                });
            }
            Op::Event {
                shape,
                level,
                parent,
                seq,
                vals,
            } => {
                make_event(*shape, *level, rt.parent(*parent), *seq, vals);
            }
            Op::Thread(body) => {
                let (body, mut moved) = (body.clone(), std::mem::take(rt));
                *rt = spanline::context::thread::spawn(move || {
                    block(&body, &mut moved);
                    moved
                })
                .join()
                .expect("the program's thread");
            }
            Op::InScope(body) => {
                spanline::context::capture().in_scope(|| block(body, rt));
            }
            Op::Detach => {
                let span = spanline::context::capture().detached();
                rt.handles.push((span, Kind::Detached));
            }
            Op::Restore => {
                let snap = spanline::context::ContextSnapshot::capture();
                let json = serde_json::to_string(&snap).unwrap();
                let back: spanline::context::ContextSnapshot = serde_json::from_str(&json).unwrap();
                rt.handles.push((back.restore("task"), Kind::Restored));
            }
            Op::DropHandle(h) => {
                if !rt.handles.is_empty() {
                    let i = usize::from(*h) % rt.handles.len();
                    rt.handles[i].0 = Span::none();
                }
            }
        }
    }
    // Innermost first, as guards on a stack are.
    while entered.pop().is_some() {}
}

// ==== sinks and sources ====

/// A `LineSink` that keeps its lines.
#[derive(Clone, Default)]
struct Memory(Arc<Mutex<Vec<String>>>);

impl LineSink for Memory {
    fn accept(&self, line: &[u8], event: &LineEvent<'_>) {
        // What a sink routes on goes with the line, to be checked too.
        let job = event.job_id().unwrap_or_default();
        self.0.lock().unwrap().push(format!(
            "{job}\t{}",
            String::from_utf8_lossy(line).trim_end()
        ));
    }
}

impl Memory {
    fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

fn schema() -> Schema {
    Schema::builder(Preset::Flat).service(SERVICE).build()
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Shape {
    Json,
    Pretty,
    /// JSON lines from Redis' job channels, each after its channel's job id
    /// and a tab: only lines with a job id, each on its job's channel.
    RedisJobs,
    /// JSON lines from a `LineSink`, each after `LineEvent::job_id()` and a tab.
    Sink,
}

/// The lines one output of a composition wrote.
#[derive(Debug)]
struct Source {
    name: &'static str,
    shape: Shape,
    lines: Vec<String>,
    /// A per-layer filter on this output: the least severe level written.
    min_level: Option<Lvl>,
    /// Keys this output adds by design (a pipe parent's `child` span).
    extra_keys: &'static [&'static str],
    /// The output gets the `job ended` lines (Redis' channels); no other
    /// output may have one.
    job_ends: bool,
}

impl Source {
    fn json(name: &'static str, lines: Vec<String>) -> Self {
        Source {
            name,
            shape: Shape::Json,
            lines,
            min_level: None,
            extra_keys: &[],
            job_ends: false,
        }
    }

    fn sink(name: &'static str, lines: Vec<String>) -> Self {
        Source {
            shape: Shape::Sink,
            ..Source::json(name, lines)
        }
    }
}

/// What running a program through a composition gave.
#[derive(Debug, Default)]
struct Run {
    sources: Vec<Source>,
    /// What `set` returned, where the composition can tell.
    sets: Option<Vec<SetOutcome>>,
    /// The composition failed to run (a child died): a mismatch of its own.
    broken: Option<String>,
}

// ==== compositions ====

trait Composition {
    fn name(&self) -> String;
    fn run(&mut self, filter: Filter, ops: &[Op]) -> Run;
    /// Its outputs get the `job ended` lines (for the summary's count).
    fn job_ends(&self) -> bool {
        false
    }
}

/// `with_default` over a hand-made stack: a sink under the `ContextLayer`,
/// the filtered `ContextLayer`, a `JsonLayer`, a sink over them with a
/// per-layer filter (rule 7: the sinks' place must not matter).
struct Hand;

const OVER_SINK_LEVEL: Lvl = Lvl::Debug;

impl Composition for Hand {
    fn name(&self) -> String {
        "hand".into()
    }

    fn run(&mut self, filter: Filter, ops: &[Op]) -> Run {
        let json = spanline_testkit::Capture::new();
        let (under, over) = (Memory::default(), Memory::default());
        let subscriber = tracing_subscriber::registry()
            .with(LineLayer::new(schema(), under.clone()))
            .with(ContextLayer::new().filter(EnvFilter::new(filter.directive())))
            .with(
                JsonLayer::builder()
                    .schema(schema())
                    .with_writer(json.clone())
                    .build(),
            )
            .with(LineLayer::new(schema(), over.clone()).with_filter(LevelFilter::DEBUG));
        let sets = tracing::subscriber::with_default(subscriber, || execute(ops));
        Run {
            sources: vec![
                Source::json("hand: JsonLayer", json.lines()),
                Source::sink("hand: sink under the ContextLayer", under.take()),
                Source {
                    min_level: Some(OVER_SINK_LEVEL),
                    ..Source::sink("hand: sink over, per-layer DEBUG", over.take())
                },
            ],
            sets: Some(sets),
            broken: None,
        }
    }
}

/// The console renderer, parsed back.
struct Pretty;

impl Composition for Pretty {
    fn name(&self) -> String {
        "pretty".into()
    }

    fn run(&mut self, filter: Filter, ops: &[Op]) -> Run {
        let out = spanline_testkit::Capture::new();
        let subscriber = tracing_subscriber::registry()
            .with(ContextLayer::new().filter(EnvFilter::new(filter.directive())))
            .with(
                spanline::PrettyLayer::new()
                    .with_writer(out.clone())
                    .with_field("service", SERVICE),
            );
        let sets = tracing::subscriber::with_default(subscriber, || execute(ops));
        Run {
            sources: vec![Source {
                shape: Shape::Pretty,
                ..Source::json("pretty", out.lines())
            }],
            sets: Some(sets),
            broken: None,
        }
    }
}

/// A child process (this test binary, `model_child`) that installs a
/// global subscriber once and runs the programs it reads on stdin.
struct ChildServer {
    mode: &'static str,
    filter: Filter,
    env: Vec<(String, String)>,
    child: Option<(Child, ChildStdin, BufReader<ChildStdout>)>,
}

impl ChildServer {
    fn new(mode: &'static str, filter: Filter, env: Vec<(String, String)>) -> Self {
        ChildServer {
            mode,
            filter,
            env,
            child: None,
        }
    }

    fn spawn(&mut self) -> &mut (Child, ChildStdin, BufReader<ChildStdout>) {
        self.child.get_or_insert_with(|| {
            let mut cmd = spanline_testkit::this_test_binary("model_child");
            child_env(&mut cmd);
            cmd.env("SPANLINE_MODEL_CHILD", self.mode)
                .env("RUST_LOG", self.filter.directive())
                .envs(self.env.iter().map(|(k, v)| (k, v)))
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit());
            let mut child = cmd.spawn().expect("the model's child process");
            let stdin = child.stdin.take().unwrap();
            let stdout = BufReader::new(child.stdout.take().unwrap());
            (child, stdin, stdout)
        })
    }

    /// Sends a program; returns the child's lines up to its end marker.
    fn exchange(&mut self, ops: &[Op]) -> Result<Vec<String>, String> {
        let (_, stdin, stdout) = self.spawn();
        let program = serde_json::to_string(ops).unwrap();
        let sent = writeln!(stdin, "{program}").and_then(|()| stdin.flush());
        let mut lines = Vec::new();
        let result = sent.map_err(|e| e.to_string()).and_then(|()| loop {
            let mut line = String::new();
            match stdout.read_line(&mut line) {
                Ok(0) => break Err("the child exited".to_string()),
                Ok(_) if line.trim_end() == "@@END" => break Ok(()),
                Ok(_) => lines.push(line.trim_end().to_string()),
                Err(e) => break Err(e.to_string()),
            }
        });
        match result {
            Ok(()) => Ok(lines),
            Err(e) => {
                // Start afresh for the next program.
                if let Some((mut child, _, _)) = self.child.take() {
                    let _ = child.kill();
                    let _ = child.wait();
                }
                Err(format!(
                    "{e}; its last lines: {:?}",
                    lines.iter().rev().take(5).collect::<Vec<_>>()
                ))
            }
        }
    }
}

impl Drop for ChildServer {
    fn drop(&mut self) {
        if let Some((mut child, stdin, _)) = self.child.take() {
            drop(stdin); // EOF: the child's loop ends
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The environment a child must not inherit: it would change its stack.
fn child_env(cmd: &mut std::process::Command) {
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy();
        if key.starts_with("SPANLINE_")
            || matches!(
                &*key,
                "RUST_LOG" | "TRACEPARENT" | "TRACESTATE" | "BAGGAGE" | "NO_COLOR"
            )
        {
            cmd.env_remove(&*key);
        }
    }
}

/// Splits a child's output: its JSON lines, and the marked sections.
fn split_child(lines: Vec<String>) -> (Vec<String>, BTreeMap<String, String>) {
    let mut json = Vec::new();
    let mut marked = BTreeMap::new();
    for line in lines {
        if let Some(rest) = line.strip_prefix("@@") {
            let (k, v) = rest.split_once(' ').unwrap_or((rest, ""));
            marked.insert(k.to_string(), v.to_string());
        } else if line.starts_with('{') {
            json.push(line);
        }
        // Anything else is libtest's own output.
    }
    (json, marked)
}

/// `spanline::builder()...init()`, optionally with a sink via `with_layer`.
struct Init {
    with_layer: bool,
    servers: Vec<ChildServer>,
}

impl Init {
    fn new(with_layer: bool) -> Self {
        let mode = if with_layer { "init_sink" } else { "init" };
        Init {
            with_layer,
            servers: [Filter::Trace, Filter::Warn]
                .map(|f| ChildServer::new(mode, f, Vec::new()))
                .into(),
        }
    }
}

/// Runs `ops` on the child server for `filter`: its JSON lines, the values
/// it marked, and what `set` returned there; or the run that broke.
#[allow(clippy::type_complexity)]
fn exchange(
    servers: &mut [ChildServer],
    filter: Filter,
    ops: &[Op],
) -> Result<
    (
        Vec<String>,
        BTreeMap<String, String>,
        Option<Vec<SetOutcome>>,
    ),
    Run,
> {
    let out = server(servers, filter).exchange(ops).map_err(|e| Run {
        broken: Some(e),
        ..Run::default()
    })?;
    let (json, marked) = split_child(out);
    let sets = marked
        .get("SETS")
        .and_then(|s| serde_json::from_str(s).ok());
    Ok((json, marked, sets))
}

fn server(servers: &mut [ChildServer], filter: Filter) -> &mut ChildServer {
    servers.iter_mut().find(|s| s.filter == filter).unwrap()
}

impl Composition for Init {
    fn name(&self) -> String {
        if self.with_layer {
            "init+with_layer"
        } else {
            "init"
        }
        .into()
    }

    fn run(&mut self, filter: Filter, ops: &[Op]) -> Run {
        let (json, marked, sets) = match exchange(&mut self.servers, filter, ops) {
            Ok(out) => out,
            Err(broken) => return broken,
        };
        let mut sources = vec![Source::json(
            if self.with_layer {
                "init+with_layer: stdout"
            } else {
                "init: stdout"
            },
            json,
        )];
        if self.with_layer {
            let sink = marked
                .get("SINK")
                .and_then(|s| serde_json::from_str(s).ok())
                .unwrap_or_default();
            sources.push(Source::sink("init+with_layer: sink", sink));
        }
        Run {
            sources,
            sets,
            broken: None,
        }
    }
}

/// A parent process with a `Forwarder` (itself a child server), whose
/// child runs the program with `init()` and forwards over the pipe.
struct Pipe {
    servers: Vec<ChildServer>,
}

impl Pipe {
    fn new() -> Self {
        Pipe {
            servers: [Filter::Trace, Filter::Warn]
                .map(|f| ChildServer::new("pipe", f, Vec::new()))
                .into(),
        }
    }
}

impl Composition for Pipe {
    fn name(&self) -> String {
        "pipe".into()
    }

    fn run(&mut self, filter: Filter, ops: &[Op]) -> Run {
        let (json, _, sets) = match exchange(&mut self.servers, filter, ops) {
            Ok(out) => out,
            Err(broken) => return broken,
        };
        Run {
            sources: vec![Source {
                // The `child` span the parent puts the child's spans under.
                extra_keys: &["name", "pid"],
                ..Source::json("pipe: parent's JsonLayer", json)
            }],
            sets,
            broken: None,
        }
    }
}

/// A private `redis-server` and a subscriber on `logs:*` that collects
/// what each program published, through `init()` in a child process or
/// through a stack composed by hand in this process.
struct Redis {
    servers: Vec<ChildServer>,
    /// The hand stacks, one per filter: the subscriber, its `JsonLayer`'s
    /// lines, the Redis layer's guard.
    hand: Vec<(
        Filter,
        tracing::Dispatch,
        spanline_testkit::Capture,
        spanline::redis::RedisGuard,
    )>,
    subscription: spanline_testkit::Subscription,
    runs: usize,
    _server: spanline_testkit::RedisServer,
}

impl Redis {
    /// `init()` publishing to Redis, in a child process.
    fn init() -> Self {
        let server = spanline_testkit::RedisServer::start();
        let subscription = spanline_testkit::Subscription::new(&server.url(), &["logs:*"]);
        let env = vec![("SPANLINE_REDIS_URL".to_string(), server.url())];
        Redis {
            servers: [Filter::Trace, Filter::Warn]
                .map(|f| ChildServer::new("redis", f, env.clone()))
                .into(),
            hand: Vec::new(),
            subscription,
            runs: 0,
            _server: server,
        }
    }

    /// The `ContextLayer` (with the filter), a `JsonLayer` and a
    /// `RedisLayer` over them, composed by hand: Redis' job ends without
    /// `init()`.
    fn hand() -> Self {
        let server = spanline_testkit::RedisServer::start();
        let subscription = spanline_testkit::Subscription::new(&server.url(), &["logs:*"]);
        let hand = [Filter::Trace, Filter::Warn]
            .map(|filter| {
                let json = spanline_testkit::Capture::new();
                let (redis, guard) = spanline::redis::RedisLayer::builder(&server.url())
                    .schema(schema())
                    .build()
                    .expect("a Redis layer");
                let dispatch = tracing::Dispatch::new(
                    tracing_subscriber::registry()
                        .with(ContextLayer::new().filter(EnvFilter::new(filter.directive())))
                        .with(
                            JsonLayer::builder()
                                .schema(schema())
                                .with_writer(json.clone())
                                .build(),
                        )
                        .with(redis),
                );
                (filter, dispatch, json, guard)
            })
            .into();
        Redis {
            servers: Vec::new(),
            hand,
            subscription,
            runs: 0,
            _server: server,
        }
    }

    /// Runs the program by hand: its JSON lines, what `set` said, the
    /// sentinel's token.
    fn run_hand(&mut self, filter: Filter, ops: &[Op]) -> (Vec<String>, Vec<SetOutcome>, String) {
        let (_, dispatch, json, guard) = self.hand.iter().find(|h| h.0 == filter).unwrap();
        json.clear();
        let sets = tracing::dispatcher::with_default(dispatch, || execute(ops));
        let token = format!("{SENTINEL}-{}", self.runs);
        tracing::dispatcher::with_default(dispatch, || {
            tracing::error!(target: "model_sentinel", token = %token, "{SENTINEL}");
        });
        assert!(
            guard.flush(Duration::from_secs(10)).complete,
            "Redis flushed"
        );
        (json.lines(), sets, token)
    }
}

/// The line the Redis child logs after each program: once it is on
/// `logs:global`, everything published before it has arrived too.
const SENTINEL: &str = "model_sentinel";

impl Composition for Redis {
    fn name(&self) -> String {
        if self.hand.is_empty() {
            "redis"
        } else {
            "redis (hand)"
        }
        .into()
    }

    fn job_ends(&self) -> bool {
        true
    }

    fn run(&mut self, filter: Filter, ops: &[Op]) -> Run {
        self.runs += 1;
        let (json, sets, token) = if self.hand.is_empty() {
            let (json, marked, sets) = match exchange(&mut self.servers, filter, ops) {
                Ok(out) => out,
                Err(broken) => return broken,
            };
            let token = marked.get("SENTINEL").cloned().unwrap_or_default();
            (json, sets, token)
        } else {
            let (json, sets, token) = self.run_hand(filter, ops);
            (json, Some(sets), token)
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        // `take`, not `messages`: a soak's 100,000 programs would copy every
        // earlier message on each poll.
        let mut messages = Vec::new();
        loop {
            let fresh = self.subscription.take();
            let done = fresh
                .iter()
                .any(|(c, p)| c == "logs:global" && p.contains(&token));
            messages.extend(fresh);
            if done || Instant::now() > deadline {
                break;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        let mut global = Vec::new();
        let mut jobs = Vec::new();
        for (channel, payload) in messages {
            if payload.contains(SENTINEL) {
                continue;
            }
            if channel == "logs:global" {
                global.push(payload.trim_end().to_string());
            } else {
                // The channel goes with the line, to check the routing.
                let job = channel
                    .strip_prefix("logs:")
                    .unwrap_or(&channel)
                    .to_string();
                jobs.push(format!("{job}\t{}", payload.trim_end()));
            }
        }
        let json = json.into_iter().filter(|l| !l.contains(SENTINEL)).collect();
        let hand = !self.hand.is_empty();
        let name = |init: &'static str, by_hand: &'static str| if hand { by_hand } else { init };
        Run {
            sources: vec![
                Source::json(name("redis: stdout", "redis (hand): JsonLayer"), json),
                Source {
                    job_ends: true,
                    ..Source::json(
                        name("redis: logs:global", "redis (hand): logs:global"),
                        global,
                    )
                },
                Source {
                    shape: Shape::RedisJobs,
                    job_ends: true,
                    ..Source::json(
                        name("redis: logs:{job_id}", "redis (hand): logs:{job_id}"),
                        jobs,
                    )
                },
            ],
            sets,
            broken: None,
        }
    }
}

// ==== the child side ====

#[test]
fn model_child() {
    let Ok(mode) = std::env::var("SPANLINE_MODEL_CHILD") else {
        return;
    };
    if mode == "leaf" {
        return leaf();
    }
    let sink = Memory::default();
    let _guard = match mode.as_str() {
        "init" | "redis" => Some(
            spanline::builder()
                .format(spanline::Format::Json)
                .service(SERVICE)
                .forward(false)
                .init(),
        ),
        "init_sink" => Some(
            spanline::builder()
                .format(spanline::Format::Json)
                .service(SERVICE)
                .forward(false)
                .with_layer(LineLayer::new(schema(), sink.clone()))
                .init(),
        ),
        "pipe" => {
            let filter = std::env::var("RUST_LOG").unwrap_or_default();
            tracing_subscriber::registry()
                .with(ContextLayer::new().filter(EnvFilter::new(filter)))
                .with(
                    JsonLayer::builder()
                        .schema(schema())
                        .with_writer(std::io::stdout)
                        .build(),
                )
                .init();
            None
        }
        other => panic!("unknown mode {other}"),
    };
    let stdout = std::io::stdout();
    for (n, program) in std::io::stdin().lines().enumerate() {
        let program = program.unwrap();
        let ops: Vec<Op> = serde_json::from_str(&program).unwrap();
        let sets = if mode == "pipe" {
            pipe_parent(&program)
        } else {
            execute(&ops)
        };
        let mut out = stdout.lock();
        if mode == "redis" {
            let token = format!("{SENTINEL}-{n}");
            drop(out);
            tracing::error!(target: "model_sentinel", token = %token, "{SENTINEL}");
            assert!(spanline::flush(Duration::from_secs(10)), "Redis flushed");
            out = stdout.lock();
            writeln!(out, "@@SENTINEL {token}").unwrap();
        }
        if mode == "init_sink" {
            writeln!(
                out,
                "@@SINK {}",
                serde_json::to_string(&sink.take()).unwrap()
            )
            .unwrap();
        }
        writeln!(out, "@@SETS {}", serde_json::to_string(&sets).unwrap()).unwrap();
        writeln!(out, "@@END").unwrap();
        out.flush().unwrap();
    }
}

/// The pipe's parent side: one forwarded child per program.
fn pipe_parent(program: &str) -> Vec<SetOutcome> {
    let sets = std::env::temp_dir().join(format!(
        "spanline-model-sets-{}-{}",
        std::process::id(),
        spanline_testkit::unique()
    ));
    let mut cmd = spanline_testkit::this_test_binary("model_child");
    cmd.env("SPANLINE_MODEL_CHILD", "leaf")
        .env("SPANLINE_MODEL_PROGRAM", program)
        .env("SPANLINE_MODEL_SETS", &sets)
        .stdout(Stdio::null());
    let status = spanline::pipe::Forwarder::new("leaf")
        .spawn(&mut cmd)
        .unwrap()
        .wait()
        .unwrap();
    assert!(status.success(), "the forwarded child failed: {status}");
    let outcome = std::fs::read_to_string(&sets)
        .ok()
        .and_then(|s| serde_json::from_str(&s).ok())
        .unwrap_or_default();
    let _ = std::fs::remove_file(&sets);
    outcome
}

/// The pipe's child side: `init()` forwards to the parent.
fn leaf() {
    let _guard = spanline::builder()
        .format(spanline::Format::Json)
        .service(SERVICE)
        .init();
    let ops: Vec<Op> =
        serde_json::from_str(&std::env::var("SPANLINE_MODEL_PROGRAM").unwrap()).unwrap();
    let sets = execute(&ops);
    std::fs::write(
        std::env::var("SPANLINE_MODEL_SETS").unwrap(),
        serde_json::to_string(&sets).unwrap(),
    )
    .unwrap();
}

// ==== comparing ====

#[derive(Clone, Debug)]
struct Mismatch {
    source: String,
    /// The event, for a mismatch in a line's content.
    seq: Option<i64>,
    what: String,
    /// The class to fall back on when the first one is not confirmed.
    alt: Option<String>,
    /// The class: what went wrong, and why the model expected otherwise.
    class: String,
}

/// A line parsed back: its level, and its keys with JSON values (pretty
/// values are text, compared as text).
struct Parsed {
    level: Option<String>,
    message: Option<String>,
    keys: Vec<(String, Value)>,
}

const RESERVED: &[&str] = &["timestamp", "level", "message", "target"];

fn parse_json(line: &str) -> Result<Parsed, String> {
    let map: Map<String, Value> = spanline_testkit::parse_strict(line)?;
    Ok(Parsed {
        level: map.get("level").and_then(Value::as_str).map(str::to_string),
        message: map
            .get("message")
            .and_then(Value::as_str)
            .map(str::to_string),
        keys: map
            .into_iter()
            .filter(|(k, _)| !RESERVED.contains(&k.as_str()))
            .collect(),
    })
}

/// `2025-11-21 20:52:49 [info     ] ev                             [target] k=v k=v`
fn parse_pretty(line: &str) -> Result<Parsed, String> {
    let open = line.find('[').ok_or("no level")?;
    let close = open + line[open..].find(']').ok_or("no level end")?;
    let level = line[open + 1..close].trim().to_string();
    let rest = line[close + 1..].trim_start();
    let (message, rest) = rest.split_once(' ').unwrap_or((rest, ""));
    let rest = rest.trim_start();
    let rest = match rest.strip_prefix('[') {
        Some(r) => r.split_once(']').map_or("", |(_, r)| r),
        None => rest,
    };
    let mut keys = Vec::new();
    for pair in rest.split_whitespace() {
        let (k, v) = pair
            .split_once('=')
            .ok_or_else(|| format!("not a pair: {pair}"))?;
        keys.push((k.to_string(), Value::String(v.to_string())));
    }
    Ok(Parsed {
        level: Some(level),
        message: Some(message.to_string()),
        keys,
    })
}

/// Where each value of the program comes from, to name a misplaced one.
fn origins(ops: &[Op], out: &mut BTreeMap<String, String>) {
    for op in ops {
        match op {
            Op::Span { vals, .. } => vals.iter().flatten().for_each(|v| {
                out.insert(v.text(), "a span field".into());
            }),
            Op::Record { val, .. } => {
                out.insert(val.text(), "a record".into());
            }
            Op::Set { val, .. } => {
                out.insert(val.text(), "a set".into());
            }
            Op::Event { seq, vals, .. } => {
                out.insert(seq.to_string(), format!("event {seq}'s seq"));
                vals.iter().flatten().for_each(|v| {
                    out.insert(v.text(), format!("event {seq}'s field"));
                });
            }
            Op::Thread(b) | Op::InScope(b) => origins(b, out),
            _ => {}
        }
    }
}

fn origin_name(c: Option<&CtxVal>) -> String {
    match c {
        None => "the event's field".into(),
        Some(c) => {
            let o = match c.origin {
                Origin::Fixed => "a span's fixed value",
                Origin::Late => "a recorded Empty field",
                Origin::Bound => "a key bound with set",
                Origin::Static => "a static field",
            };
            format!("{o}{}", c.note)
        }
    }
}

/// Compares one output with the model.
/// Also gives the events whose lines were right.
fn compare(
    source: &Source,
    filter: Filter,
    expect: &Expect,
    ops: &[Op],
) -> (Vec<Mismatch>, BTreeSet<i64>) {
    // (A cell: the count of mismatches tells whether a line was right.)
    let found = std::cell::RefCell::new(Vec::new());
    let mut checked = BTreeSet::new();
    let push = |seq: Option<i64>, what: String, class: String| {
        found.borrow_mut().push(Mismatch {
            source: source.name.to_string(),
            seq,
            what,
            class,
            alt: None,
        });
    };
    let pretty = source.shape == Shape::Pretty;
    let as_val = |v: &Val| {
        if pretty {
            Value::String(v.text())
        } else {
            v.json()
        }
    };
    let mut by_seq: BTreeMap<i64, Vec<(Parsed, Option<String>)>> = BTreeMap::new();
    // The lines in arrival order, for the job ends' order.
    let mut order: Vec<(Option<String>, Arrived)> = Vec::new();
    for raw in &source.lines {
        let (channel, line) = match source.shape {
            Shape::RedisJobs | Shape::Sink => match raw.split_once('\t') {
                Some((c, l)) => (Some(c.to_string()), l),
                None => (None, raw.as_str()),
            },
            _ => (None, raw.as_str()),
        };
        let parsed = if pretty {
            parse_pretty(line)
        } else {
            parse_json(line)
        };
        let parsed = match parsed {
            Ok(p) => p,
            Err(e) => {
                push(
                    None,
                    format!("unreadable line ({e}): {line}"),
                    "unreadable line".into(),
                );
                continue;
            }
        };
        let seq = parsed
            .keys
            .iter()
            .find(|(k, _)| k == "seq")
            .and_then(|(_, v)| match v {
                Value::String(s) => s.parse().ok(),
                v => v.as_i64(),
            });
        let end = if pretty { None } else { job_end_line(line) };
        match (seq, end) {
            (Some(seq), _) => {
                order.push((channel.clone(), Arrived::Line(seq)));
                by_seq.entry(seq).or_default().push((parsed, channel));
            }
            (None, Some(_)) if !source.job_ends => push(
                None,
                format!("a job ended line: {line}"),
                "job ended line on an output that only Redis gets".into(),
            ),
            (None, Some(Err(e))) => push(
                None,
                format!("{e}: {line}"),
                "job ended line malformed".into(),
            ),
            (None, Some(Ok(job))) => order.push((channel, Arrived::End(job))),
            // The pipe's own lines.
            (None, None) if line.contains("spanline_pipe") || line.contains("model_reset") => {}
            (None, None) => push(
                None,
                format!("a line without seq: {line}"),
                "a line no event of the program wrote".into(),
            ),
        }
    }
    let mut values = BTreeMap::new();
    values.insert(
        RESET.to_string(),
        "the line logged before the program".to_string(),
    );
    origins(ops, &mut values);
    for exp in &expect.lines {
        let before = found.borrow().len();
        let written = exp.written
            && source.min_level.is_none_or(|min| exp.level >= min)
            && (source.shape != Shape::RedisJobs || exp.job.is_some());
        let got = by_seq.remove(&exp.seq).unwrap_or_default();
        if !written {
            if !got.is_empty() {
                let (what, class) = if source.shape == Shape::RedisJobs && exp.written {
                    (
                        "published to a job channel, its context has no job_id",
                        "line on a job channel without a job_id",
                    )
                } else {
                    (
                        "written, the filter disables it",
                        "line written that the filter disables",
                    )
                };
                push(
                    Some(exp.seq),
                    format!("event {} ({}): {what}", exp.seq, exp.level.json()),
                    class.into(),
                );
            }
            continue;
        }
        let Some((line, channel)) = got.first() else {
            let class = if exp.info_rule && filter == Filter::Warn {
                "line lost (an INFO-rule span on its path)"
            } else {
                "line lost"
            };
            push(
                Some(exp.seq),
                format!("no line for event {} ({})", exp.seq, exp.level.json()),
                class.into(),
            );
            continue;
        };
        if got.len() > 1 {
            push(
                Some(exp.seq),
                format!("{} lines for event {}", got.len(), exp.seq),
                "line duplicated".into(),
            );
        }
        if source.shape == Shape::RedisJobs && channel.as_deref() != exp.job.as_deref() {
            push(
                Some(exp.seq),
                format!(
                    "on logs:{:?}, its context's job_id is {:?}",
                    channel, exp.job
                ),
                "line on the wrong job channel".into(),
            );
        }
        let sink_job = channel.as_deref().filter(|j| !j.is_empty());
        if source.shape == Shape::Sink && sink_job != exp.job.as_deref() {
            push(
                Some(exp.seq),
                format!("event {}: LineEvent::job_id() is {sink_job:?}, the context's job_id is {:?}", exp.seq, exp.job),
                "LineEvent::job_id() differs from the context's job_id (Redis routes on the latter)".into(),
            );
        }
        let want_level = if pretty {
            exp.level.pretty()
        } else {
            exp.level.json()
        };
        if line.level.as_deref() != Some(want_level) || line.message.as_deref() != Some("ev") {
            push(
                Some(exp.seq),
                format!(
                    "level/message {:?}/{:?}, expected {want_level}/ev",
                    line.level, line.message
                ),
                "wrong level or message".into(),
            );
        }
        let expected = exp.expected();
        let mut problems = Vec::new();
        for (k, v, c) in &expected {
            match line.keys.iter().find(|(lk, _)| lk == k) {
                None => problems.push((
                    format!(
                        "missing {k} (expected {} from {})",
                        v.code(),
                        origin_name(*c)
                    ),
                    "missing",
                    *c,
                )),
                Some((_, got)) if *got != as_val(v) => problems.push((
                    format!(
                        "{k} = {got} (from {}), expected {} from {}",
                        values
                            .get(&text_of(got))
                            .map_or("nowhere in the program", String::as_str),
                        v.code(),
                        origin_name(*c)
                    ),
                    "wrong value",
                    *c,
                )),
                Some(_) => {}
            }
        }
        let mut seen_keys = BTreeSet::new();
        for (k, got) in &line.keys {
            if !seen_keys.insert(k.as_str()) {
                problems.push((format!("key {k} twice"), "duplicate key", None));
            }
            if !expected.iter().any(|(e, _, _)| e == k) && !source.extra_keys.contains(&k.as_str())
            {
                problems.push((
                    format!(
                        "extra {k} = {got} (from {})",
                        values
                            .get(&text_of(got))
                            .map_or("nowhere in the program", String::as_str)
                    ),
                    "extra key",
                    None,
                ));
            }
        }
        if problems.is_empty() {
            if found.borrow().len() == before {
                checked.insert(exp.seq);
            }
            continue;
        }
        let class = classify(exp, line, &problems, expect, filter, source.extra_keys);
        let what = problems
            .iter()
            .map(|(w, _, _)| w.as_str())
            .collect::<Vec<_>>()
            .join("; ");
        push(
            Some(exp.seq),
            format!("event {} ({}): {what}", exp.seq, exp.level.json()),
            format!("content: {class}"),
        );
        if class == INFO_TAG {
            if let Some(m) = found.borrow_mut().last_mut() {
                m.alt = Some(format!("content: {}", generic(&problems)));
            }
        }
    }
    for (seq, got) in by_seq {
        push(
            Some(seq),
            format!(
                "{} line(s) with seq {seq}, which no event of the program has",
                got.len()
            ),
            "line from nowhere".into(),
        );
    }
    if source.job_ends {
        // (The composition goes in the class: Redis composed by `init()`
        // and by hand may differ.)
        let composition = source.name.split(": ").next().unwrap_or_default();
        compare_ends(source, expect, &order, &mut |what, class| {
            push(None, what, format!("{class} [{composition}]"));
        });
    }
    (found.into_inner(), checked)
}

/// A line of an output, in arrival order.
enum Arrived {
    Line(i64),
    /// A `job ended` line, with its `job_id`.
    End(String),
}

/// `Some` for a `job ended` line (target `spanline::job`): its `job_id`,
/// or what is wrong with it.
fn job_end_line(line: &str) -> Option<Result<String, String>> {
    let map: Map<String, Value> = serde_json::from_str(line).ok()?;
    if map.get("target").and_then(Value::as_str) != Some("spanline::job") {
        return None;
    }
    let str_of = |k: &str| map.get(k).and_then(Value::as_str);
    let mut wrong = Vec::new();
    if str_of("message") != Some("job ended") {
        wrong.push("message");
    }
    if str_of("level") != Some("INFO") {
        wrong.push("level");
    }
    if map.get("job_end") != Some(&Value::Bool(true)) {
        wrong.push("job_end");
    }
    if str_of("service") != Some(SERVICE) {
        wrong.push("service");
    }
    let known = [
        "timestamp",
        "level",
        "message",
        "target",
        "job_id",
        "job_end",
        "service",
    ];
    wrong.extend(
        map.keys()
            .map(String::as_str)
            .filter(|k| !known.contains(k)),
    );
    Some(match str_of("job_id") {
        Some(job) if wrong.is_empty() => Ok(job.to_string()),
        Some(_) => Err(format!("wrong or extra {}", wrong.join(", "))),
        None => Err("no string job_id".into()),
    })
}

/// The `job ended` lines of an output that gets them (docs/redis.md): one
/// per end the model expects, on the job's channel (and the global feed),
/// each after every line of its job logged before the end and before every
/// line logged after it.
fn compare_ends(
    source: &Source,
    expect: &Expect,
    order: &[(Option<String>, Arrived)],
    push: &mut dyn FnMut(String, String),
) {
    let per_channel = source.shape == Shape::RedisJobs;
    // Where each job's end lines and lines arrived: by channel on the job
    // channels, by the line's job on the global feed.
    let mut ends: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    let mut lines: BTreeMap<(Option<String>, i64), usize> = BTreeMap::new();
    for (at, (channel, arrived)) in order.iter().enumerate() {
        match arrived {
            Arrived::Line(seq) => {
                lines.entry((channel.clone(), *seq)).or_insert(at);
            }
            Arrived::End(job) => {
                let key = if per_channel {
                    let channel = channel.clone().unwrap_or_default();
                    if channel != *job {
                        push(
                            format!("a job ended line of {job:?} on logs:{channel}"),
                            "job ended line on another job's channel".into(),
                        );
                    }
                    channel
                } else {
                    job.clone()
                };
                ends.entry(key).or_default().push(at);
            }
        }
    }
    let mut expected: BTreeMap<String, Vec<&JobClose>> = BTreeMap::new();
    for end in expect.ends() {
        expected.entry(end.job.clone()).or_default().push(end);
    }
    let want_all = expect.ends().count();
    if ends.is_empty() && want_all > 0 {
        push(
            format!(
                "no job ended line, the model expects {want_all}: {}",
                expected
                    .iter()
                    .map(|(job, e)| format!("{job:?} x{} ({})", e.len(), e[0].how))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            "no job ended line at all".into(),
        );
        return;
    }
    let jobs: BTreeSet<&String> = ends.keys().chain(expected.keys()).collect();
    for job in jobs {
        let got = ends.get(job).map_or(&[][..], Vec::as_slice);
        let want = expected.get(job).map_or(&[][..], Vec::as_slice);
        let counts = format!(
            "job {job:?}: {} job ended line(s), the model expects {} ({})",
            got.len(),
            want.len(),
            closes_of(expect, job)
        );
        if got.len() < want.len() {
            // (Which of a job's ends is missing cannot be told: the last.)
            // (A case the rule leaves open is one class, whichever span.)
            let end = want[got.len()];
            let class = match end.unclear {
                Some(_) => format!("job end missing:{}", unclear(end.unclear)),
                None => format!("job end missing: {}", end.how),
            };
            push(counts, class);
            continue;
        }
        if got.len() > want.len() {
            push(counts, extra_end_class(expect, job));
            continue;
        }
        // The k-th end line is the k-th end: between the lines before it
        // and the lines after it.
        for (k, (end, &pos)) in want.iter().zip(got).enumerate() {
            let key = |seq: i64| (per_channel.then(|| job.clone()), seq);
            let mut early = None;
            let mut late = None;
            for (i, line) in expect.lines.iter().enumerate() {
                if !line.written || line.job.as_deref() != Some(job.as_str()) {
                    continue;
                }
                let Some(&at) = lines.get(&key(line.seq)) else {
                    continue; // lost: reported with the lines
                };
                if i < end.at && at > pos {
                    early.get_or_insert(line.seq);
                }
                if i >= end.at && at < pos {
                    late = Some(line.seq);
                }
            }
            if let Some(seq) = early {
                push(
                    format!(
                        "job {job:?}: end {} ({}) arrived before event {seq}, logged before it",
                        k + 1,
                        end.how
                    ),
                    "job end published before a line of its job logged earlier".into(),
                );
            }
            if let Some(seq) = late {
                push(
                    format!(
                        "job {job:?}: end {} ({}) arrived after event {seq}, logged after it",
                        k + 1,
                        end.how
                    ),
                    "job end published after a line of its job logged later".into(),
                );
            }
        }
    }
}

fn unclear(note: Option<&str>) -> String {
    note.map_or(String::new(), |n| format!(" [unclear case: {n}]"))
}

/// The model's closes of spans carrying `job`, for a report.
fn closes_of(expect: &Expect, job: &str) -> String {
    let closes: Vec<String> = expect
        .closes
        .iter()
        .filter(|c| c.job == job)
        .map(|c| {
            let what = match c.outcome {
                Outcome::End => "ends it".to_string(),
                Outcome::HandedOn(how) => format!("handed on by {how}"),
                Outcome::Inner => "inner".to_string(),
            };
            format!("{}: {what}{}", c.how, unclear(c.unclear))
        })
        .collect();
    if closes.is_empty() {
        "no span carrying it closes".into()
    } else {
        closes.join("; ")
    }
}

/// Names a `job ended` line the model does not expect by why it does not.
fn extra_end_class(expect: &Expect, job: &str) -> String {
    let closes: Vec<&JobClose> = expect.closes.iter().filter(|c| c.job == job).collect();
    let note = closes.iter().find_map(|c| c.unclear);
    if note.is_some() {
        return format!("job end extra:{}", unclear(note));
    }
    let why = if let Some(c) = closes
        .iter()
        .find(|c| matches!(c.outcome, Outcome::HandedOn(_)))
    {
        let Outcome::HandedOn(how) = c.outcome else {
            unreachable!()
        };
        format!(
            "the job was handed on ({how}) from {}",
            c.how.trim_start_matches("the close of ")
        )
    } else if closes.iter().any(|c| c.outcome == Outcome::Inner) {
        "at an inner span (its parent carries the same job_id)".into()
    } else {
        "no span carrying the job closes".into()
    };
    format!("job end extra: {why}")
}

fn text_of(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        v => v.to_string(),
    }
}

/// Names the mismatch class of a line, most telling reason first.
fn classify(
    exp: &ExpLine,
    line: &Parsed,
    problems: &[(String, &str, Option<&CtxVal>)],
    expect: &Expect,
    filter: Filter,
    extra_keys: &[&str],
) -> String {
    // The line carries another event's context.
    let own: BTreeSet<&str> = exp.fields.iter().map(|(k, _)| k.as_str()).collect();
    let actual: BTreeMap<String, String> = line
        .keys
        .iter()
        .filter(|(k, _)| !own.contains(k.as_str()) && !extra_keys.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), text_of(v)))
        .collect();
    let ctx_of = |other: &ExpLine| -> BTreeMap<String, String> {
        other
            .ctx
            .iter()
            .filter(|(k, _)| !own.contains(k.as_str()))
            .map(|(k, c)| (k.clone(), c.val.text()))
            .collect()
    };
    // (Only a context with a value from the program names another line:
    // an empty one is a lost context.)
    // (And a value this line should not have: a line that only lacks
    // keys lost them, whichever other line it then resembles.)
    let has_program_value = actual
        .iter()
        .any(|(k, v)| !(k == "service" && v == SERVICE));
    let mine = ctx_of(exp);
    let foreign = actual.iter().any(|(k, v)| mine.get(k) != Some(v));
    if has_program_value && foreign {
        if let Some(other) = expect
            .lines
            .iter()
            .find(|o| o.seq != exp.seq && ctx_of(o) == actual)
        {
            let when = if other.seq < exp.seq {
                "an earlier"
            } else {
                "a later"
            };
            return format!("the line carries the context of {when} event");
        }
    }
    let context_problems: Vec<_> = problems.iter().filter(|(_, _, c)| c.is_some()).collect();
    if context_problems
        .iter()
        .any(|(_, kind, c)| *kind == "missing" && c.is_some_and(|c| c.past_empty))
    {
        return "an unrecorded Empty field hides the value of a span above (or a bound key)".into();
    }
    if problems.iter().any(|(w, kind, _)| {
        *kind == "missing"
            && exp
                .unrecorded
                .iter()
                .any(|k| w.starts_with(&format!("missing {k} ")))
    }) {
        return "an event field declared without a value hides the context's value".into();
    }
    if exp.info_rule && filter == Filter::Warn {
        return INFO_TAG.into();
    }
    generic(problems)
}

/// A mismatch class that `check` confirms: the same program under `trace`
/// must get the line right, or the filter is not the cause.
const INFO_TAG: &str = "context lost under warn (an INFO span without a context key on the path)";

fn generic(problems: &[(String, &str, Option<&CtxVal>)]) -> String {
    let (_, kind, c) = &problems[0];
    format!("{kind}: expected from {}", origin_name(*c))
}

// ==== the driver ====

fn cases() -> u32 {
    std::env::var("SPANLINE_MODEL_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(64)
}

fn seed() -> [u8; 32] {
    let n: u64 = std::env::var("SPANLINE_MODEL_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
        });
    let mut seed = [0u8; 32];
    seed[..8].copy_from_slice(&n.to_le_bytes());
    seed[8..16].copy_from_slice(&n.to_le_bytes());
    seed
}

fn seed_number(seed: &[u8; 32]) -> u64 {
    u64::from_le_bytes(seed[..8].try_into().unwrap())
}

/// One program through one composition under one filter.
fn check(comp: &mut dyn Composition, filter: Filter, ops: &[Op]) -> Vec<Mismatch> {
    let expect = Model::run(filter, ops);
    let run = comp.run(filter, ops);
    if let Some(e) = run.broken {
        return vec![Mismatch {
            source: comp.name(),
            seq: None,
            what: e,
            alt: None,
            class: "the composition failed to run".into(),
        }];
    }
    let compared: Vec<_> = run
        .sources
        .iter()
        .map(|s| compare(s, filter, &expect, ops))
        .collect();
    // Rule 7: a line that one output of the composition got right and
    // another got wrong is a layer-order bug of the latter, whatever it
    // looks like.
    let mut found = Vec::new();
    for (i, (mismatches, _)) in compared.iter().enumerate() {
        for m in mismatches {
            let mut m = m.clone();
            if let (Some(seq), Some(_)) = (m.seq, m.class.strip_prefix("content: ")) {
                let right = compared
                    .iter()
                    .enumerate()
                    .any(|(j, (_, ok))| j != i && ok.contains(&seq));
                if right {
                    m.what = format!("{} [{}]", m.what, m.class);
                    m.class = format!(
                        "rule 7: this output's context differs from the composition's other outputs: {}",
                        m.source
                    );
                }
            }
            found.push(m);
        }
    }
    if let Some(sets) = run.sets {
        if sets != expect.sets {
            found.push(Mismatch {
                source: comp.name(),
                seq: None,
                alt: None,
                what: format!("set returned {sets:?}, expected {:?}", expect.sets),
                class: "set's result".into(),
            });
        }
    }
    // A line wrong under `warn` for an INFO span is the filter's doing only
    // if the same program gets it right under `trace`.
    if filter == Filter::Warn && found.iter().any(|m| m.alt.is_some()) {
        let under_trace: BTreeSet<(String, i64)> = check(comp, Filter::Trace, ops)
            .into_iter()
            .filter_map(|m| Some((m.source, m.seq?)))
            .collect();
        for m in &mut found {
            if let (Some(alt), Some(seq)) = (&m.alt, m.seq) {
                if under_trace.contains(&(m.source.clone(), seq)) {
                    m.class = alt.clone();
                }
            }
        }
    }
    found
}

struct Class {
    composition: String,
    filter: Filter,
    sources: BTreeSet<String>,
    /// The shrunk program and its mismatches of this class.
    program: Vec<Op>,
    mismatches: Vec<Mismatch>,
    hits: usize,
    /// The program shows the class when run again on its own.
    alone: bool,
}

/// Runs the cases through every composition; shrinks one program per
/// mismatch class; fails with the report if any class was found.
fn drive(set: &str, comps: &mut [Box<dyn Composition>]) {
    let cases = cases();
    let seed = seed();
    let started = Instant::now();
    let config = Config {
        cases,
        ..Config::default()
    };
    let mut runner = TestRunner::new_with_rng(
        config.clone(),
        TestRng::from_seed(RngAlgorithm::ChaCha, &seed),
    );
    let strategy = program();
    let mut classes: BTreeMap<String, Class> = BTreeMap::new();
    let mut lines_checked = 0usize;
    let mut ends_checked = 0usize;
    for _ in 0..cases {
        let case_rng = runner.new_rng();
        let tree = |rng: &TestRng| {
            strategy
                .new_tree(&mut TestRunner::new_with_rng(config.clone(), rng.clone()))
                .unwrap()
        };
        let ops = tree(&case_rng).current();
        for comp in comps.iter_mut() {
            for filter in [Filter::Trace, Filter::Warn] {
                let found = check(comp.as_mut(), filter, &ops);
                let expect = Model::run(filter, &ops);
                lines_checked += expect.lines.iter().filter(|l| l.written).count();
                if comp.job_ends() {
                    ends_checked += expect.ends().count();
                }
                for m in &found {
                    if let Some(class) = classes.get_mut(&m.class) {
                        class.hits += 1;
                        class.sources.insert(m.source.clone());
                        continue;
                    }
                    // A new class: shrink a program that shows it.
                    let shows = |comp: &mut dyn Composition, ops: &[Op]| {
                        let found: Vec<_> = check(comp, filter, ops)
                            .into_iter()
                            .filter(|x| x.class == m.class)
                            .collect();
                        (!found.is_empty()).then_some(found)
                    };
                    // A class that a program does not show when run again
                    // depends on what ran before it in the process.
                    let alone = shows(comp.as_mut(), &ops).is_some();
                    let (program, mismatches) = if alone {
                        let mut t = tree(&case_rng);
                        let (program, mismatches) = shrink(&mut t, |ops| shows(comp.as_mut(), ops));
                        minimize(program, |ops| shows(comp.as_mut(), ops), mismatches)
                    } else {
                        let same = found.iter().filter(|x| x.class == m.class);
                        (ops.clone(), same.cloned().collect())
                    };
                    classes.insert(
                        m.class.clone(),
                        Class {
                            composition: comp.name(),
                            filter,
                            sources: [m.source.clone()].into(),
                            program,
                            mismatches,
                            hits: 1,
                            alone,
                        },
                    );
                }
            }
        }
    }
    let elapsed = started.elapsed();
    let names: Vec<String> = comps.iter().map(|c| c.name()).collect();
    let ends = if ends_checked > 0 {
        format!(", {ends_checked} expected job ends checked")
    } else {
        String::new()
    };
    eprintln!(
        "context model [{set}]: {cases} programs x {} x {{trace, warn}}, {lines_checked} expected lines checked{ends}, seed {} (SPANLINE_MODEL_SEED), {:.1?}",
        names.join(" + "),
        seed_number(&seed),
        elapsed
    );
    if classes.is_empty() {
        return;
    }
    let mut report = format!("{} mismatch class(es) in [{set}]:\n", classes.len());
    for (name, class) in &classes {
        let _ = writeln!(
            report,
            "\n== {name}\n   seen {} time(s) in: {}\n   {} under {} / filter {}:\n{}   mismatches:",
            class.hits,
            class.sources.iter().cloned().collect::<Vec<_>>().join(", "),
            if class.alone {
                "shrunk"
            } else {
                "NOT shown when run again alone (it depends on what ran before in the process); as generated"
            },
            class.composition,
            class.filter.directive(),
            show(&class.program)
        );
        for m in class.mismatches.iter().take(4) {
            let _ = writeln!(report, "   - [{}] {}", m.source, m.what);
        }
        let _ = writeln!(
            report,
            "   replay: {}SPANLINE_MODEL_REPLAY='{}' cargo test -p spanline --test context_model replay -- --nocapture",
            if class.composition.starts_with("redis") {
                "SPANLINE_MODEL_REPLAY_REDIS=1 "
            } else {
                ""
            },
            serde_json::to_string(&class.program).unwrap()
        );
    }
    panic!("{report}");
}

/// How long each of the two shrinking passes may take per class (a
/// composition with child processes costs milliseconds a run).
const SHRINK_TIME: Duration = Duration::from_secs(5);

/// proptest's shrinking, driven by hand so that the property is "shows
/// this class" (one bug's program is not shrunk into another bug's).
fn shrink<T: ValueTree<Value = Vec<Op>>>(
    tree: &mut T,
    mut shows: impl FnMut(&[Op]) -> Option<Vec<Mismatch>>,
) -> (Vec<Op>, Vec<Mismatch>) {
    let mut best = tree.current();
    let mut found = shows(&best).unwrap_or_default();
    let deadline = Instant::now() + SHRINK_TIME;
    if !tree.simplify() {
        return (best, found);
    }
    while Instant::now() < deadline {
        let candidate = tree.current();
        match shows(&candidate) {
            Some(f) => {
                best = candidate;
                found = f;
                if !tree.simplify() {
                    break;
                }
            }
            None => {
                if !tree.complicate() {
                    break;
                }
            }
        }
    }
    (best, found)
}

// ==== the tests ====

#[test]
fn in_process_compositions() {
    if std::env::var_os("SPANLINE_MODEL_CHILD").is_some() {
        return;
    }
    drive("in-process", &mut [Box::new(Hand), Box::new(Pretty)]);
}

#[test]
fn init_compositions() {
    if std::env::var_os("SPANLINE_MODEL_CHILD").is_some() {
        return;
    }
    drive(
        "init",
        &mut [Box::new(Init::new(false)), Box::new(Init::new(true))],
    );
}

#[test]
fn pipe_composition() {
    if std::env::var_os("SPANLINE_MODEL_CHILD").is_some() {
        return;
    }
    drive("pipe", &mut [Box::new(Pipe::new())]);
}

#[test]
fn redis_composition() {
    if std::env::var_os("SPANLINE_MODEL_CHILD").is_some() {
        return;
    }
    drive(
        "redis",
        &mut [Box::new(Redis::init()), Box::new(Redis::hand())],
    );
}

/// The model itself, on programs whose lines are known by hand.
#[test]
fn model_examples() {
    let ops = vec![
        Op::Span {
            shape: 1,
            level: Lvl::Info,
            parent: Parent::Current,
            vals: vec![Some(Val::S("v1".into()))],
        },
        Op::Enter(0),
        Op::Span {
            shape: 1,
            level: Lvl::Info,
            parent: Parent::Current,
            vals: vec![None],
        },
        Op::Enter(1),
        Op::Event {
            shape: 0,
            level: Lvl::Warn,
            parent: Parent::Current,
            seq: 2,
            vals: vec![],
        },
        Op::Record {
            span: 1,
            field: 0,
            val: Val::I(3),
        },
        Op::Event {
            shape: 0,
            level: Lvl::Warn,
            parent: Parent::Current,
            seq: 4,
            vals: vec![],
        },
        Op::Set {
            key: 3,
            val: Val::S("v5".into()),
        },
        Op::Event {
            shape: 1,
            level: Lvl::Info,
            parent: Parent::Of(0),
            seq: 6,
            vals: vec![Some(Val::S("v7".into()))],
        },
    ];
    let expect = Model::run(Filter::Warn, &ops);
    let k0 = |i: usize| expect.lines[i].ctx.get("k0").map(|c| c.val.clone());
    assert_eq!(
        k0(0),
        Some(Val::S("v1".into())),
        "an unrecorded Empty hides nothing"
    );
    assert_eq!(k0(1), Some(Val::I(3)), "recorded, it shows");
    assert_eq!(
        expect.lines[2].ctx.get("user_id").map(|c| c.val.clone()),
        Some(Val::S("v5".into())),
        "bound under the root"
    );
    assert!(!expect.lines[2].written, "INFO under warn");
    assert_eq!(expect.sets, vec![SetOutcome::Ok]);
}

/// The model's job ends, and the checks of the `job ended` lines, on
/// programs and outputs known by hand.
#[test]
fn job_end_examples() {
    let job_span = |v: &str| Op::Span {
        shape: 5,
        level: Lvl::Info,
        parent: Parent::Current,
        vals: vec![Some(Val::S(v.into())), None],
    };
    let event = |seq: i64| Op::Event {
        shape: 0,
        level: Lvl::Warn,
        parent: Parent::Current,
        seq,
        vals: vec![],
    };
    let ends = |ops: &[Op]| -> Vec<(String, usize)> {
        Model::run(Filter::Warn, ops)
            .ends()
            .map(|e| (e.job.clone(), e.at))
            .collect()
    };
    // A span inside the job's span with the same job: one end, at the
    // outer span's close, which comes after the inner one's.
    let nested = [job_span("v1"), Op::Enter(0), job_span("v1"), event(2)];
    assert_eq!(ends(&nested), [("v1".to_string(), 1)]);
    // A DEBUG span with the job: kept under warn, it ends its job.
    let debug = [Op::Span {
        shape: 9,
        level: Lvl::Debug,
        parent: Parent::Current,
        vals: vec![Some(Val::I(1)), None],
    }];
    assert_eq!(ends(&debug), [("1".to_string(), 0)]);
    // Handed on twice with snapshots: the restored roots end it (each run
    // once, when its handle drops), never the span that captured.
    let handed = [
        job_span("v1"),
        Op::Enter(0),
        event(2),
        Op::Restore,
        Op::Restore,
        Op::Exit,
        Op::DropHandle(0),
        Op::Enter(1),
        event(3),
        Op::Exit,
        Op::DropHandle(1),
        Op::Enter(2),
        event(4),
    ];
    assert_eq!(
        ends(&handed),
        [("v1".to_string(), 2), ("v1".to_string(), 3)]
    );
    // A held span keeps its job open: entered, its dropped handle does not
    // end it; the guard's exit does.
    let held = [
        job_span("v1"),
        Op::Enter(0),
        Op::DropHandle(0),
        event(2),
        Op::Exit,
        event(3),
    ];
    assert_eq!(ends(&held), [("v1".to_string(), 1)]);
    // The order check: the output of `handed` with its end lines in place,
    // then with the first end after the line logged after it, then before
    // a line logged before it.
    let expect = Model::run(Filter::Warn, &handed);
    let line = |seq: i64| {
        format!(
            r#"{{"level":"WARN","message":"ev","target":"context_model","seq":{seq},"job_id":"v1","service":"svc"}}"#
        )
    };
    let end = r#"{"level":"INFO","message":"job ended","target":"spanline::job","job_id":"v1","job_end":true,"service":"svc"}"#.to_string();
    let classes = |lines: Vec<String>| -> Vec<String> {
        let source = Source {
            job_ends: true,
            ..Source::json("redis: logs:global", lines)
        };
        let (found, _) = compare(&source, Filter::Warn, &expect, &handed);
        found
            .into_iter()
            .map(|m| m.class)
            .filter(|c| c.starts_with("job end") || c.starts_with("no job"))
            .collect()
    };
    let right = vec![line(2), line(3), end.clone(), line(4), end.clone()];
    assert_eq!(classes(right), Vec::<String>::new());
    let late = vec![line(2), line(3), line(4), end.clone(), end.clone()];
    assert_eq!(
        classes(late),
        ["job end published after a line of its job logged later [redis]"]
    );
    let early = vec![line(2), end.clone(), line(3), line(4), end.clone()];
    assert_eq!(
        classes(early),
        ["job end published before a line of its job logged earlier [redis]"]
    );
    let missing = vec![line(2), line(3), end.clone(), line(4)];
    assert_eq!(
        classes(missing),
        ["job end missing: a restored root's close [redis]"]
    );
    let none = vec![line(2), line(3), line(4)];
    assert_eq!(classes(none), ["no job ended line at all [redis]"]);
    let stdout = Source::json("redis: stdout", vec![line(2), end]);
    let (found, _) = compare(&stdout, Filter::Warn, &expect, &handed);
    assert!(found
        .iter()
        .any(|m| m.class == "job ended line on an output that only Redis gets"));
}

/// Runs one program (`SPANLINE_MODEL_REPLAY`, as a report prints it)
/// through every composition and filter; prints its lines and mismatches.
#[test]
fn replay() {
    let Ok(program) = std::env::var("SPANLINE_MODEL_REPLAY") else {
        return;
    };
    let ops: Vec<Op> = serde_json::from_str(&program).unwrap();
    eprintln!("program:\n{}", show(&ops));
    let mut comps: Vec<Box<dyn Composition>> = vec![
        Box::new(Hand),
        Box::new(Pretty),
        Box::new(Init::new(false)),
        Box::new(Init::new(true)),
        Box::new(Pipe::new()),
    ];
    if std::env::var_os("SPANLINE_MODEL_REPLAY_REDIS").is_some() {
        comps.push(Box::new(Redis::init()));
        comps.push(Box::new(Redis::hand()));
    }
    for comp in &mut comps {
        for filter in [Filter::Trace, Filter::Warn] {
            let run = comp.run(filter, &ops);
            eprintln!("\n{} / {}:", comp.name(), filter.directive());
            if comp.job_ends() {
                for close in &Model::run(filter, &ops).closes {
                    eprintln!(
                        "  model: job {:?} after {} line(s): {}: {:?}{}",
                        close.job,
                        close.at,
                        close.how,
                        close.outcome,
                        unclear(close.unclear)
                    );
                }
            }
            for source in &run.sources {
                eprintln!("  {}:", source.name);
                for line in &source.lines {
                    eprintln!("    {line}");
                }
            }
            for m in check(comp.as_mut(), filter, &ops) {
                eprintln!("  MISMATCH [{}] {} ({})", m.source, m.what, m.class);
            }
        }
    }
}
