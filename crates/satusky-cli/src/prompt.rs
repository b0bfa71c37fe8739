//! Reading passwords and confirmations: from the terminal when there is
//! one, from standard input when asked to, never from arguments.

use std::io::{BufRead, IsTerminal, Write};

use crate::error::CliError;

/// Reads `n` lines from standard input (for `--password-stdin`).
pub fn stdin_lines(n: usize) -> Result<Vec<String>, CliError> {
    let stdin = std::io::stdin();
    let mut lines = Vec::with_capacity(n);
    for line in stdin.lock().lines().take(n) {
        let line = line.map_err(|e| {
            CliError::unexpected(&anyhow::Error::new(e).context("cannot read standard input"))
        })?;
        lines.push(line.trim_end_matches('\r').to_owned());
    }
    if lines.len() < n || lines.iter().any(String::is_empty) {
        let what = if n == 1 {
            "a password line".to_owned()
        } else {
            format!("{n} non-empty lines")
        };
        return Err(CliError::usage(format!(
            "expected {what} on standard input"
        )));
    }
    Ok(lines)
}

/// Whether people can be asked questions.
pub fn interactive() -> bool {
    std::io::stdin().is_terminal() && std::io::stderr().is_terminal()
}

/// Asks for a password on the terminal, without echo.
pub fn password(prompt: &str, flag: &str) -> Result<String, CliError> {
    if !interactive() {
        return Err(
            CliError::usage("no terminal to ask for the password").hint(format!(
                "pass {flag} and write the password to standard input"
            )),
        );
    }
    let value = rpassword::prompt_password(prompt).map_err(|e| {
        CliError::unexpected(&anyhow::Error::new(e).context("cannot read the password"))
    })?;
    if value.is_empty() {
        return Err(CliError::usage("the password is empty"));
    }
    Ok(value)
}

/// Asks for a new password twice.
pub fn new_password(prompt: &str, flag: &str) -> Result<String, CliError> {
    let first = password(prompt, flag)?;
    let second = password("Repeat it: ", flag)?;
    if first != second {
        return Err(CliError::refused("the passwords do not match"));
    }
    Ok(first)
}

/// Asks a question on stderr and reads one line from the terminal.
pub fn line(prompt: &str) -> Result<String, CliError> {
    eprint!("{prompt}");
    std::io::stderr().flush().ok();
    let mut answer = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut answer)
        .map_err(|e| {
            CliError::unexpected(&anyhow::Error::new(e).context("cannot read the answer"))
        })?;
    Ok(answer.trim().to_owned())
}
