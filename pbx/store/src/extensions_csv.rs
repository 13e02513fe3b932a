//! The extensions CSV (`pbx extension import`, the web admin's import and export): columns
//! `number,password,name,email,pin[,did]`, header first (`did` optional). Every bad row is reported with its line,
//! and nothing is to be imported when any row is bad. The export has the same columns but the
//! secrets: `number,name,email,pin_set,media_encryption,context,allowed_networks,did`.

use std::collections::{HashMap, HashSet};

use crate::{Extension, NewExtension};

/// The import's columns, in the order the header usually gives them.
/// `did` came later and may be left out: older files still import.
pub const IMPORT_COLUMNS: [&str; 6] = ["number", "password", "name", "email", "pin", "did"];

/// The export's columns: no password, no PIN (only whether one is set).
pub const EXPORT_COLUMNS: [&str; 8] = [
    "number",
    "name",
    "email",
    "pin_set",
    "media_encryption",
    "context",
    "allowed_networks",
    "did",
];

/// One problem of an import, at its line (1 is the header).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CsvProblem {
    pub line: u64,
    pub message: String,
}

/// Parses and checks `text`. `existing` holds the numbers already in the database and
/// `dids` the DIDs already given (DID → extension): a row repeating either, or a DID of an
/// earlier row, is an error too. Returns the rows, or every problem with its line.
pub fn parse_extensions_csv(
    text: &str,
    existing: &HashSet<String>,
    dids: &HashMap<String, String>,
) -> Result<Vec<NewExtension>, Vec<CsvProblem>> {
    let at = |line: u64, msg: &str| CsvProblem {
        line,
        message: msg.to_string(),
    };
    // The csv crate counts a CRLF line end (Windows, a browser's form) short by one line:
    // read LF only, so that every problem is at its line whatever made the file.
    let text = text.replace("\r\n", "\n");
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .from_reader(text.as_bytes());
    let header = match reader.headers() {
        Ok(h) => h.clone(),
        Err(e) => return Err(vec![at(1, &format!("cannot read the header: {e}"))]),
    };
    let mut index = HashMap::new();
    let mut problems = Vec::new();
    for (i, name) in header.iter().enumerate() {
        let name = name.trim().to_ascii_lowercase();
        if !IMPORT_COLUMNS.contains(&name.as_str()) {
            problems.push(at(
                1,
                &format!(
                    "unknown column `{name}`, expected {}",
                    IMPORT_COLUMNS.join(",")
                ),
            ));
        } else if index.insert(name.clone(), i).is_some() {
            problems.push(at(1, &format!("column `{name}` appears twice")));
        }
    }
    for required in ["number", "password"] {
        if !index.contains_key(required) {
            problems.push(at(
                1,
                &format!(
                    "missing column `{required}` (header: {})",
                    IMPORT_COLUMNS.join(",")
                ),
            ));
        }
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    let mut rows = Vec::new();
    let mut seen: HashMap<String, u64> = HashMap::new();
    let mut seen_dids: HashMap<String, (u64, String)> = HashMap::new();
    for record in reader.records() {
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                let line = e.position().map_or(0, |p| p.line());
                problems.push(at(line, &format!("bad CSV: {e}")));
                continue;
            }
        };
        let line = record.position().map_or(0, |p| p.line());
        if record.iter().all(|f| f.trim().is_empty()) {
            continue;
        }
        if record.len() > header.len() {
            problems.push(at(
                line,
                &format!("{} fields, the header has {}", record.len(), header.len()),
            ));
            continue;
        }
        let field = |name: &str| {
            index
                .get(name)
                .and_then(|&i| record.get(i))
                .unwrap_or_default()
        };
        let optional = |name: &str| {
            let v = field(name).trim();
            (!v.is_empty()).then(|| v.to_string())
        };
        let ext = NewExtension {
            number: field("number").trim().to_string(),
            // Passwords are taken as written: spaces may be part of them.
            password: field("password").to_string(),
            name: optional("name"),
            email: optional("email"),
            pin: optional("pin"),
            allowed_networks: Vec::new(),
            media_encryption: None,
            did: optional("did"),
        };
        let mut row_problems = ext.problems();
        if let Some(first) = seen.get(&ext.number) {
            row_problems.push(format!(
                "extension {} is already on line {first}",
                ext.number
            ));
        } else if existing.contains(&ext.number) {
            row_problems.push(format!("extension {} already exists", ext.number));
        }
        seen.entry(ext.number.clone()).or_insert(line);
        // A DID names one extension (migration 0015).
        if let Some(did) = ext.did.as_deref().filter(|d| !d.is_empty()) {
            if let Some((first, number)) = seen_dids.get(did) {
                row_problems.push(format!(
                    "DID {did} is already extension {number}'s on line {first}"
                ));
            } else if let Some(number) = dids.get(did) {
                row_problems.push(format!("DID {did} is already extension {number}'s"));
            }
            seen_dids
                .entry(did.to_string())
                .or_insert((line, ext.number.clone()));
        }
        if row_problems.is_empty() {
            rows.push(ext);
        } else {
            problems.extend(row_problems.iter().map(|p| at(line, p)));
        }
    }
    if problems.is_empty() {
        Ok(rows)
    } else {
        Err(problems)
    }
}

/// A field a spreadsheet would not take for a formula (a leading `'` then).
fn cell(text: &str) -> String {
    let risky = text.starts_with(['=', '@', '\t', '\r'])
        || (text.starts_with(['+', '-'])
            && !text[1..].bytes().all(|b| b.is_ascii_digit() || b == b' '));
    if risky {
        format!("'{text}")
    } else {
        text.to_string()
    }
}

/// `exts` as CSV with [`EXPORT_COLUMNS`], header first.
pub fn extensions_to_csv(exts: &[Extension]) -> String {
    let mut out = csv::Writer::from_writer(Vec::new());
    // Writing to memory cannot fail; a record that did would only be missing.
    let _ = out.write_record(EXPORT_COLUMNS);
    for e in exts {
        let networks: Vec<String> = e.allowed_networks.iter().map(ToString::to_string).collect();
        let _ = out.write_record([
            e.number.clone(),
            cell(&e.name),
            cell(&e.email),
            if e.has_pin { "yes" } else { "no" }.to_string(),
            e.media_encryption.clone(),
            cell(&e.context),
            networks.join(" "),
            cell(&e.did),
        ]);
    }
    String::from_utf8(out.into_inner().unwrap_or_default()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Vec<NewExtension>, Vec<String>> {
        let existing: HashSet<String> = ["2000".to_string()].into_iter().collect();
        let dids: HashMap<String, String> = [("+4930123".to_string(), "2000".to_string())]
            .into_iter()
            .collect();
        parse_extensions_csv(text, &existing, &dids).map_err(|problems| {
            problems
                .into_iter()
                .map(|p| format!("x.csv:{}: {}", p.line, p.message))
                .collect()
        })
    }

    #[test]
    fn good_rows_parse() {
        let rows =
            parse("number,password,name,email,pin\n1000,pw1,Alice,a@x.org,1234\n1001,pw2,,,\n")
                .unwrap_or_default();
        assert_eq!(rows.len(), 2);
        assert_eq!(
            rows.first().map(|r| r.name.clone()),
            Some(Some("Alice".into()))
        );
        assert_eq!(rows.get(1).map(|r| r.pin.clone()), Some(None));
        assert_eq!(rows.first().map(|r| r.did.clone()), Some(None));
    }

    #[test]
    fn the_did_column_is_optional_and_checked() {
        let rows =
            parse("number,password,did\n1000,pw,+15551230001\n1001,pw,\n").unwrap_or_default();
        let dids: Vec<_> = rows.iter().map(|r| r.did.clone()).collect();
        assert_eq!(dids, [Some("+15551230001".to_string()), None]);
        let errs = parse("number,password,did\n1000,pw,555-12\n")
            .err()
            .unwrap_or_default();
        assert_eq!(errs.len(), 1);
        assert!(
            errs.iter().all(|e| e.starts_with("x.csv:2: bad DID")),
            "{errs:?}"
        );
    }

    #[test]
    fn a_did_names_one_extension() {
        let text = "number,password,did\n\
                    1000,pw,+15551230001\n\
                    1001,pw,+15551230001\n\
                    1002,pw,+4930123\n\
                    1003,pw,\n\
                    1004,pw,\n";
        let errs = parse(text).err().unwrap_or_default();
        assert_eq!(
            errs,
            vec![
                "x.csv:3: DID +15551230001 is already extension 1000's on line 2",
                "x.csv:4: DID +4930123 is already extension 2000's",
            ]
        );
    }

    #[test]
    fn every_bad_row_is_reported_with_its_line() {
        let text = "number,password,name,email,pin\n\
                    1000,pw,A,,\n\
                    12x,pw,B,,\n\
                    1001,,C,,\n\
                    1000,pw,D,,\n\
                    2000,pw,E,,\n\
                    1002,pw,F,bad,12\n";
        let errs = parse(text).err().unwrap_or_default();
        assert_eq!(
            errs,
            vec![
                "x.csv:3: bad extension number `12x`: expected 2 to 15 digits",
                "x.csv:4: the password is empty",
                "x.csv:5: extension 1000 is already on line 2",
                "x.csv:6: extension 2000 already exists",
                "x.csv:7: bad e-mail address `bad`",
                "x.csv:7: bad PIN: expected 4 to 12 digits",
            ]
        );
    }

    #[test]
    fn crlf_line_ends_keep_the_line_numbers() {
        let errs = parse("number,password\r\n1000,pw\r\n12x,pw\r\n1001,\r\n")
            .err()
            .unwrap_or_default();
        assert_eq!(
            errs,
            vec![
                "x.csv:3: bad extension number `12x`: expected 2 to 15 digits",
                "x.csv:4: the password is empty",
            ]
        );
    }

    #[test]
    fn bad_headers() {
        let errs = parse("number,secret\n1000,x\n").err().unwrap_or_default();
        assert_eq!(errs.len(), 2);
        assert!(errs.iter().all(|e| e.starts_with("x.csv:1: ")));
    }

    #[test]
    fn export_names_no_secret_and_quotes_what_needs_it() {
        let ext = Extension {
            number: "1000".into(),
            name: "=Smith, Alice".into(),
            email: "a@x.org".into(),
            has_pin: true,
            allowed_networks: vec!["10.0.0.0/8".parse().unwrap_or_else(|_| panic!())],
            created_at: 1,
            media_encryption: "required".into(),
            context: "staff".into(),
            mwi_unsolicited: false,
            did: "+15551230001".into(),
        };
        assert_eq!(
            extensions_to_csv(&[ext]),
            "number,name,email,pin_set,media_encryption,context,allowed_networks,did\n\
             1000,\"'=Smith, Alice\",a@x.org,yes,required,staff,10.0.0.0/8,+15551230001\n"
        );
    }
}
