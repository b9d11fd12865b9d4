//! RFC 4180 CSV: the reader behind the specification and the field writer behind the
//! manifest.

/// One CSV record: its fields and the line it starts on.
pub(super) struct Record {
    pub(super) line: usize,
    pub(super) fields: Vec<String>,
}

/// A CSV syntax problem.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CsvProblem {
    /// A quoted field is not closed.
    #[error("quoted field is not closed")]
    UnterminatedQuote,
    /// Something other than a comma or a line break follows a closing quote.
    #[error("unexpected character after a closing quote")]
    AfterQuote,
}

/// Reads RFC 4180 CSV. Skips a BOM, blank lines and `#` comment lines.
pub(super) fn read_csv(text: &str) -> Result<Vec<Record>, (usize, CsvProblem)> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let chars: Vec<char> = text.chars().collect();
    let mut records = Vec::new();
    let mut i = 0;
    let mut line = 1;
    while i < chars.len() {
        let start_line = line;
        // Blank and comment lines.
        if chars[i] == '\n' || chars[i] == '\r' {
            if chars[i] == '\r' && chars.get(i + 1) == Some(&'\n') {
                i += 1;
            }
            i += 1;
            line += 1;
            continue;
        }
        if chars[i] == '#' {
            while i < chars.len() && chars[i] != '\n' && chars[i] != '\r' {
                i += 1;
            }
            continue;
        }
        let mut fields = Vec::new();
        loop {
            let mut field = String::new();
            if chars.get(i) == Some(&'"') {
                let quote_line = line;
                i += 1;
                loop {
                    match chars.get(i) {
                        None => return Err((quote_line, CsvProblem::UnterminatedQuote)),
                        Some('"') if chars.get(i + 1) == Some(&'"') => {
                            field.push('"');
                            i += 2;
                        }
                        Some('"') => {
                            i += 1;
                            break;
                        }
                        Some(&c) => {
                            if c == '\n' || (c == '\r' && chars.get(i + 1) != Some(&'\n')) {
                                line += 1;
                            }
                            field.push(c);
                            i += 1;
                        }
                    }
                }
                if !matches!(chars.get(i), None | Some(',' | '\n' | '\r')) {
                    return Err((line, CsvProblem::AfterQuote));
                }
            } else {
                while let Some(&c) = chars.get(i) {
                    if c == ',' || c == '\n' || c == '\r' {
                        break;
                    }
                    field.push(c);
                    i += 1;
                }
            }
            fields.push(field);
            match chars.get(i) {
                Some(',') => i += 1,
                Some('\r') => {
                    i += if chars.get(i + 1) == Some(&'\n') {
                        2
                    } else {
                        1
                    };
                    line += 1;
                    break;
                }
                Some('\n') => {
                    i += 1;
                    line += 1;
                    break;
                }
                _ => break,
            }
        }
        // Rows of empty cells (spreadsheets export them as `,,,`) count as blank lines.
        if fields.iter().any(|f| !f.trim().is_empty()) {
            records.push(Record {
                line: start_line,
                fields,
            });
        }
    }
    Ok(records)
}

/// Quotes a field when needed; with `text`, defuses spreadsheet formulas (a leading `=`,
/// `+`, `-`, `@`, tab or carriage return gets a `'`).
pub(super) fn csv_field(out: &mut String, value: &str, text: bool) {
    let defuse = text && value.starts_with(['=', '+', '-', '@', '\t', '\r']);
    let quote = defuse
        || value.contains([',', '"', '\n', '\r'])
        || value.starts_with(' ')
        || value.ends_with(' ');
    if quote {
        out.push('"');
    }
    if defuse {
        out.push('\'');
    }
    for c in value.chars() {
        if c == '"' {
            out.push('"');
        }
        out.push(c);
    }
    if quote {
        out.push('"');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_reader_handles_quotes_crlf_bom_and_comments() {
        let text =
            "\u{feff}a,b\r\n# comment\r\n\r\n\"x,1\",\"he said \"\"hi\"\"\"\r\n\"multi\nline\",z\n";
        let records = read_csv(text).unwrap();
        let fields: Vec<Vec<String>> = records.iter().map(|r| r.fields.clone()).collect();
        assert_eq!(
            fields,
            vec![
                vec!["a".to_owned(), "b".to_owned()],
                vec!["x,1".to_owned(), "he said \"hi\"".to_owned()],
                vec!["multi\nline".to_owned(), "z".to_owned()],
            ]
        );
        let lines: Vec<usize> = records.iter().map(|r| r.line).collect();
        assert_eq!(lines, vec![1, 4, 5]);
        assert_eq!(
            read_csv("a\n\"open,b\n").err(),
            Some((2, CsvProblem::UnterminatedQuote))
        );
        assert_eq!(
            read_csv("\"a\"b\n").err(),
            Some((1, CsvProblem::AfterQuote))
        );
    }

    #[test]
    fn csv_writer_round_trips_and_defuses_formulas() {
        let mut out = String::new();
        for (i, v) in ["plain", "a,b", "say \"x\"", "two\nlines", " pad ", "=1+1"]
            .iter()
            .enumerate()
        {
            if i > 0 {
                out.push(',');
            }
            csv_field(&mut out, v, true);
        }
        out.push('\n');
        let records = read_csv(&out).unwrap();
        assert_eq!(
            records[0].fields,
            vec!["plain", "a,b", "say \"x\"", "two\nlines", " pad ", "'=1+1"]
        );
    }
}
