//! `hactl completions SHELL` and `hactl man`: generated from clap's
//! definition of the command line, so they never drift from it.

use clap::CommandFactory;

use crate::cli::{Arguments, Context, Error};

pub(super) fn completions(ctx: &Context, shell: clap_complete::Shell) -> Result<i32, Error> {
    let mut buf = Vec::new();
    clap_complete::generate(shell, &mut Arguments::command(), "hactl", &mut buf);
    ctx.out.text(&String::from_utf8_lossy(&buf))?;
    Ok(0)
}

pub(super) fn man(ctx: &Context) -> Result<i32, Error> {
    let mut buf = Vec::new();
    clap_mangen::Man::new(Arguments::command())
        .render(&mut buf)
        .map_err(Error::Stdout)?;
    ctx.out.text(&String::from_utf8_lossy(&buf))?;
    Ok(0)
}
