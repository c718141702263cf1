//! A typed reader over one spanned TOML table.
//!
//! serde's derive stops at the first error of a table; an operator with three typos in a
//! trunk would need three `check-config` runs. This reader instead type-checks each key on
//! its own, records every problem with its exact position, and on `finish` reports every key
//! nobody asked for (the `deny_unknown_fields` of this layer, with a spelling suggestion).

use std::ops::Range;
use std::time::Duration;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::error::{ConfigError, SourceFile};
use super::values::parse_duration;

/// A string value and where it sits in the file.
pub(super) type Str<'a> = Spanned<&'a str>;

pub(super) struct TableReader<'a, 'i, 'e> {
    source: &'a SourceFile,
    /// "[trunks.x]", "[daemon]", "the top level": where the table is, for messages.
    table_name: String,
    trunk: Option<&'a str>,
    table: &'a DeTable<'i>,
    used: Vec<&'a str>,
    errors: &'e mut Vec<ConfigError>,
}

impl<'a, 'i, 'e> TableReader<'a, 'i, 'e> {
    pub(super) fn new(
        source: &'a SourceFile,
        table_name: String,
        trunk: Option<&'a str>,
        table: &'a DeTable<'i>,
        errors: &'e mut Vec<ConfigError>,
    ) -> Self {
        Self {
            source,
            table_name,
            trunk,
            table,
            used: Vec::new(),
            errors,
        }
    }

    pub(super) fn source(&self) -> &'a SourceFile {
        self.source
    }

    /// Records an error written elsewhere (a nested table's).
    pub(super) fn push_error(&mut self, error: ConfigError) {
        self.errors.push(error);
    }

    /// Records an error at a byte span of this reader's file.
    pub(super) fn error(&mut self, span: &Range<usize>, message: String) {
        let error = self.source.error_at(span.start, self.trunk, message);
        self.errors.push(error);
    }

    fn value(&mut self, key: &'static str) -> Option<&'a Spanned<DeValue<'i>>> {
        self.used.push(key);
        self.table.get(key)
    }

    fn wrong_type(&mut self, key: &str, value: &Spanned<DeValue<'_>>, expected: &str) {
        let found = value.get_ref().type_str();
        self.error(
            &value.span(),
            format!("{key}: expected {expected}, found {found}"),
        );
    }

    pub(super) fn string(&mut self, key: &'static str) -> Option<Str<'a>> {
        let value = self.value(key)?;
        match value.get_ref() {
            DeValue::String(text) => Some(Spanned::new(value.span(), text.as_ref())),
            _ => {
                self.wrong_type(key, value, "a string");
                None
            }
        }
    }

    pub(super) fn boolean(&mut self, key: &'static str) -> Option<bool> {
        let value = self.value(key)?;
        match value.get_ref() {
            DeValue::Boolean(flag) => Some(*flag),
            _ => {
                self.wrong_type(key, value, "true or false");
                None
            }
        }
    }

    /// An integer within `range`; out-of-range values are reported with the bounds.
    pub(super) fn integer(&mut self, key: &'static str, range: Range<i64>) -> Option<Spanned<i64>> {
        let value = self.value(key)?;
        let DeValue::Integer(integer) = value.get_ref() else {
            self.wrong_type(key, value, "an integer");
            return None;
        };
        let digits = integer.as_str().replace('_', "");
        let parsed = i64::from_str_radix(&digits, integer.radix()).ok();
        match parsed {
            Some(number) if range.contains(&number) => Some(Spanned::new(value.span(), number)),
            _ => {
                let (low, high) = (range.start, range.end - 1);
                self.error(
                    &value.span(),
                    format!("{key}: {integer} is out of range {low}..={high}"),
                );
                None
            }
        }
    }

    /// A duration written with a unit ("30s"), or a bare integer 0.
    pub(super) fn duration(&mut self, key: &'static str) -> Option<Spanned<Duration>> {
        let value = self.value(key)?;
        let text = match value.get_ref() {
            DeValue::Integer(integer) if integer.as_str() == "0" => "0",
            DeValue::String(text) => text.as_ref(),
            _ => {
                self.wrong_type(key, value, "a duration string such as \"30s\"");
                return None;
            }
        };
        match parse_duration(text) {
            Ok(duration) => Some(Spanned::new(value.span(), duration)),
            Err(reason) => {
                self.error(&value.span(), format!("{key}: {reason}"));
                None
            }
        }
    }

    /// A sub-table, such as `[daemon]` within the document.
    pub(super) fn table(&mut self, key: &'static str) -> Option<(&'a DeTable<'i>, Range<usize>)> {
        let value = self.value(key)?;
        match value.get_ref() {
            DeValue::Table(table) => Some((table, value.span())),
            _ => {
                self.wrong_type(key, value, "a table");
                None
            }
        }
    }

    /// An array of integers within `range`; bad elements are reported one by one.
    pub(super) fn integers(
        &mut self,
        key: &'static str,
        range: Range<i64>,
    ) -> Option<Vec<Spanned<i64>>> {
        let value = self.value(key)?;
        let DeValue::Array(items) = value.get_ref() else {
            self.wrong_type(key, value, "an array of integers");
            return None;
        };
        let mut numbers = Vec::with_capacity(items.len());
        for (index, item) in items.iter().enumerate() {
            let parsed = match item.get_ref() {
                DeValue::Integer(integer) => {
                    i64::from_str_radix(&integer.as_str().replace('_', ""), integer.radix()).ok()
                }
                _ => {
                    self.wrong_type(&format!("{key}[{index}]"), item, "an integer");
                    continue;
                }
            };
            match parsed {
                Some(number) if range.contains(&number) => {
                    numbers.push(Spanned::new(item.span(), number));
                }
                _ => {
                    let (low, high) = (range.start, range.end - 1);
                    self.error(
                        &item.span(),
                        format!("{key}[{index}]: out of range {low}..={high}"),
                    );
                }
            }
        }
        Some(numbers)
    }

    /// A value of any type (the caller tells the types apart).
    pub(super) fn any(&mut self, key: &'static str) -> Option<&'a Spanned<DeValue<'i>>> {
        self.value(key)
    }

    /// The trunk this table belongs to, for messages.
    pub(super) fn trunk(&self) -> Option<&'a str> {
        self.trunk
    }

    /// An array's elements, of any type.
    pub(super) fn array(&mut self, key: &'static str) -> Option<Vec<&'a Spanned<DeValue<'i>>>> {
        let value = self.value(key)?;
        match value.get_ref() {
            DeValue::Array(items) => Some(items.iter().collect()),
            _ => {
                self.wrong_type(key, value, "an array");
                None
            }
        }
    }

    /// An array of strings; non-string elements are reported one by one.
    pub(super) fn strings(&mut self, key: &'static str) -> Option<Vec<Str<'a>>> {
        let value = self.value(key)?;
        let DeValue::Array(items) = value.get_ref() else {
            self.wrong_type(key, value, "an array of strings");
            return None;
        };
        let mut strings = Vec::with_capacity(items.len());
        for (index, item) in items.iter().enumerate() {
            match item.get_ref() {
                DeValue::String(text) => strings.push(Spanned::new(item.span(), text.as_ref())),
                _ => self.wrong_type(&format!("{key}[{index}]"), item, "a string"),
            }
        }
        Some(strings)
    }

    /// A string turned into `T` by `parse`; a parse failure is reported at the value.
    pub(super) fn parsed<T>(
        &mut self,
        key: &'static str,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Option<Spanned<T>> {
        let text = self.string(key)?;
        match parse(text.get_ref()) {
            Ok(parsed) => Some(Spanned::new(text.span(), parsed)),
            Err(reason) => {
                self.error(&text.span(), format!("{key}: {reason}"));
                None
            }
        }
    }

    /// Each element of a string array turned into `T`; failures are reported per element.
    pub(super) fn parsed_list<T>(
        &mut self,
        key: &'static str,
        parse: impl Fn(&str) -> Result<T, String>,
    ) -> Option<Vec<Spanned<T>>> {
        let strings = self.strings(key)?;
        let mut parsed = Vec::with_capacity(strings.len());
        for text in strings {
            match parse(text.get_ref()) {
                Ok(value) => parsed.push(Spanned::new(text.span(), value)),
                Err(reason) => self.error(&text.span(), format!("{key}: {reason}")),
            }
        }
        Some(parsed)
    }

    /// Reports every key of the table that no accessor asked for.
    pub(super) fn finish(self) {
        for (key, _) in self.table.iter() {
            let name: &str = key.get_ref();
            if self.used.contains(&name) {
                continue;
            }
            let hint = suggestion(name, &self.used)
                .map(|known| format!("; did you mean \"{known}\"?"))
                .unwrap_or_default();
            let message = format!("unknown key \"{name}\" in {}{hint}", self.table_name);
            let error = self.source.error_at(key.span().start, self.trunk, message);
            self.errors.push(error);
        }
    }
}

/// The known key closest to a misspelt one, if it is close enough to be a typo.
fn suggestion<'k>(unknown: &str, known: &[&'k str]) -> Option<&'k str> {
    known
        .iter()
        .map(|candidate| (edit_distance(unknown, candidate), *candidate))
        .filter(|(distance, candidate)| *distance <= 2.max(candidate.len() / 4))
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, candidate)| candidate)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut current = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(ca != *cb);
            current[j + 1] = substitution.min(previous[j + 1] + 1).min(current[j] + 1);
        }
        previous = current;
    }
    previous[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_close_keys_only() {
        let known = ["password", "port", "domain"];
        assert_eq!(suggestion("pasword", &known), Some("password"));
        assert_eq!(suggestion("domian", &known), Some("domain"));
        assert_eq!(suggestion("colour", &known), None);
    }
}
