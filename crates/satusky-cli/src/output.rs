//! Printing results. stdout carries data only: a table for people, or
//! exactly the JSON/YAML of the data for programs. Notes go to stderr.

use std::io::{IsTerminal, Write};

use chrono::{DateTime, SecondsFormat, Utc};
use comfy_table::{Attribute, Cell, ContentArrangement, Table, presets};
use serde::Serialize;

use crate::cli::OutputFormat;

/// How to print.
#[derive(Debug, Clone, Copy)]
pub struct Printer {
    pub format: OutputFormat,
    pub color: bool,
}

/// A type shown as one row of a table.
pub trait Row {
    const HEADERS: &'static [&'static str];
    fn cells(&self) -> Vec<String>;
}

/// A type shown as a two-column table of fields.
pub trait Fields {
    fn fields(&self) -> Vec<(&'static str, String)>;
}

impl Printer {
    pub fn new(format: OutputFormat, no_color: bool) -> Self {
        Self {
            format,
            color: !no_color && std::io::stdout().is_terminal(),
        }
    }

    pub fn is_table(self) -> bool {
        self.format == OutputFormat::Table
    }

    /// Prints one item of a stream as it arrives: `line(item)` in a table,
    /// one JSON object per line, or one YAML document.
    pub fn item<T: Serialize>(
        self,
        item: &T,
        line: impl FnOnce(&T) -> String,
    ) -> anyhow::Result<()> {
        match self.format {
            OutputFormat::Table => println!("{}", line(item)),
            OutputFormat::Json => println!("{}", serde_json::to_string(item)?),
            OutputFormat::Yaml => print!("---\n{}", serde_yaml::to_string(item)?),
        }
        Ok(())
    }

    /// Prints a list. An empty list is `[]` in JSON and YAML; in a table, a
    /// note on stderr.
    pub fn list<T: Serialize + Row>(self, items: &[T], empty: &str) -> anyhow::Result<()> {
        match self.format {
            OutputFormat::Table => {
                if items.is_empty() {
                    note(empty);
                    return Ok(());
                }
                let mut table = Self::table();
                table.set_header(T::HEADERS.iter().map(|h| self.header(h)));
                for item in items {
                    table.add_row(item.cells());
                }
                write_stdout(&render(&mut table))
            }
            _ => self.data(&items),
        }
    }

    /// Prints one object.
    pub fn one<T: Serialize + Fields>(self, item: &T) -> anyhow::Result<()> {
        match self.format {
            OutputFormat::Table => {
                let mut table = Self::table();
                for (name, value) in item.fields() {
                    table.add_row(vec![self.header(name), Cell::new(value)]);
                }
                write_stdout(&render(&mut table))
            }
            _ => self.data(item),
        }
    }

    /// Prints data in JSON or YAML; in table mode, prints nothing (the
    /// command tells people on stderr).
    pub fn data<T: Serialize + ?Sized>(self, item: &T) -> anyhow::Result<()> {
        match self.format {
            OutputFormat::Table => Ok(()),
            OutputFormat::Json => {
                let mut text = serde_json::to_string_pretty(item)?;
                text.push('\n');
                write_stdout(&text)
            }
            OutputFormat::Yaml => write_stdout(&serde_yaml::to_string(item)?),
        }
    }

    fn table() -> Table {
        let mut table = Table::new();
        table
            .load_preset(presets::NOTHING)
            .set_content_arrangement(ContentArrangement::Dynamic);
        table
    }

    fn header(self, text: &str) -> Cell {
        let cell = Cell::new(text);
        if self.color {
            cell.add_attribute(Attribute::Bold)
        } else {
            cell
        }
    }
}

/// Columns start at the left margin and are two blanks apart; no line ends
/// in blanks.
fn render(table: &mut Table) -> String {
    for column in table.column_iter_mut() {
        column.set_padding((0, 2));
    }
    let mut text = table
        .to_string()
        .lines()
        .map(str::trim_end)
        .collect::<Vec<_>>()
        .join("\n");
    text.push('\n');
    text
}

/// Writes to stdout; a closed pipe (`1ctl … | head`) is not an error.
fn write_stdout(text: &str) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => Ok(other?),
    }
}

/// A note for people, on stderr.
pub fn note(message: &str) {
    eprintln!("{message}");
}

/// A timestamp for a table: RFC 3339 in UTC, to the second.
pub fn time(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

pub fn opt_time(t: Option<&DateTime<Utc>>) -> String {
    t.map_or_else(|| "-".to_owned(), time)
}

pub fn opt(s: Option<&str>) -> String {
    s.map_or_else(|| "-".to_owned(), str::to_owned)
}
