//! The command line.

use std::path::PathBuf;

/// What the command line asked for.
pub(crate) struct Options {
    pub(crate) quick: bool,
    pub(crate) svg: Option<PathBuf>,
    pub(crate) only: Vec<String>,
    /// Contender labels to keep (exact match); empty keeps all.
    pub(crate) contenders: Vec<String>,
    /// Draw the chart from a saved run's JSON lines instead of measuring.
    pub(crate) replot: Option<PathBuf>,
}

pub(crate) fn options() -> Result<Options, String> {
    let mut o = Options {
        quick: false,
        svg: None,
        only: Vec::new(),
        contenders: Vec::new(),
        replot: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--quick" => o.quick = true,
            "--svg" => o.svg = Some(args.next().ok_or("--svg needs a file name")?.into()),
            "--only" => o
                .only
                .push(args.next().ok_or("--only needs a scenario name")?),
            "--replot" => {
                o.replot = Some(args.next().ok_or("--replot needs a file name")?.into())
            }
            "--contender" => o
                .contenders
                .push(args.next().ok_or("--contender needs a contender label")?),
            "-h" | "--help" => return Err(
                "usage: compare [--quick] [--svg FILE] [--only SCENARIO]... [--contender LABEL]... [--replot RUN.txt --svg FILE]"
                    .into(),
            ),
            other => return Err(format!("unknown argument {other:?} (try --help)")),
        }
    }
    Ok(o)
}
