//! The dashboard's HTML forms: what a submitted form holds, the errors to show next to
//! its fields, and the readings of its values (lists of words, lifetimes).

use tessera_core::error::FieldError;

/// A submitted `application/x-www-form-urlencoded` form, in order, repeated names kept
/// (a group of checkboxes sends one pair per box).
#[derive(Debug, Clone, Default)]
pub struct Form(Vec<(String, String)>);

impl Form {
    pub fn parse(body: &[u8]) -> Option<Self> {
        serde_urlencoded::from_bytes(body).ok().map(Self)
    }

    /// The first value of `name`, or `""`.
    pub fn get(&self, name: &str) -> &str {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map_or("", |(_, v)| v.as_str())
    }

    pub fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.0
            .iter()
            .filter(move |(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn has(&self, name: &str, value: &str) -> bool {
        self.all(name).any(|v| v == value)
    }

    pub fn set(&mut self, name: &str, value: impl Into<String>) {
        self.0.retain(|(k, _)| k != name);
        self.0.push((name.to_owned(), value.into()));
    }

    pub fn push(&mut self, name: &str, value: impl Into<String>) {
        self.0.push((name.to_owned(), value.into()));
    }

    /// A whitespace- or comma-separated list, `None` when empty.
    pub fn words(&self, name: &str) -> Option<Vec<String>> {
        let words: Vec<String> = self
            .get(name)
            .split(|c: char| c.is_whitespace() || c == ',')
            .filter(|w| !w.is_empty())
            .map(str::to_owned)
            .collect();
        (!words.is_empty()).then_some(words)
    }

    /// The value of `name` if it is not blank.
    pub fn text(&self, name: &str) -> Option<String> {
        let value = self.get(name).trim();
        (!value.is_empty()).then(|| value.to_owned())
    }

    /// A lifetime chosen with [`LIFETIME_PRESETS`] radio buttons named `name`, or typed
    /// into `{name}_other` when the button `other` is chosen. `None` when none is chosen.
    pub fn lifetime(&self, name: &str) -> Result<Option<u64>, FieldError> {
        match self.get(name) {
            "" => Ok(None),
            "other" => parse_duration(self.get(&format!("{name}_other")))
                .map(Some)
                .ok_or_else(|| {
                    FieldError::new(
                        name,
                        "write a lifetime such as 45m, 2h, 7d, or a number of seconds",
                    )
                }),
            preset => preset
                .parse()
                .map(Some)
                .map_err(|_| FieldError::new(name, "choose one of the lifetimes")),
        }
    }
}

/// A form as shown again: the values to fill in, and what was wrong with them.
#[derive(Debug, Clone, Default)]
pub struct Fields {
    pub form: Form,
    errors: Vec<(String, String)>,
    /// An error that belongs to no single field.
    pub banner: Option<String>,
}

impl Fields {
    pub fn new(form: Form) -> Self {
        Self {
            form,
            ..Self::default()
        }
    }

    /// Shows `error` next to its field; a field the form does not have (`scopes[2]`
    /// reads as `scopes`) is still shown beside the nearest one by name.
    pub fn fail(&mut self, error: FieldError) {
        let field = error
            .field
            .split(['[', '.'])
            .next()
            .unwrap_or_default()
            .to_owned();
        self.errors.push((field, error.message));
    }

    pub fn error(&self, name: &str) -> Option<&str> {
        self.errors
            .iter()
            .find(|(field, _)| field == name)
            .map(|(_, message)| message.as_str())
    }
}

/// The lifetimes offered as one click each: 15 minutes, 1 hour, 10 hours, 30 days.
pub const LIFETIME_PRESETS: [(u64, &str); 4] = [
    (900, "15 min"),
    (3600, "1 hour"),
    (36_000, "10 hours"),
    (2_592_000, "30 days"),
];

/// Fills the lifetime radio buttons `name` for `secs`: its preset, or `other` with the
/// lifetime written out.
pub fn set_lifetime(form: &mut Form, name: &str, secs: u64) {
    if LIFETIME_PRESETS.iter().any(|(p, _)| *p == secs) {
        form.set(name, secs.to_string());
    } else {
        form.set(name, "other");
        form.set(&format!("{name}_other"), short_duration(secs));
    }
}

/// `90`, `15m`, `2 h`, `1.5h` is not accepted: whole numbers of s, m, h, d or w.
pub fn parse_duration(text: &str) -> Option<u64> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: u64 = number.parse().ok()?;
    let unit: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "s" | "sec" | "secs" | "second" | "seconds" => 1,
        "m" | "min" | "mins" | "minute" | "minutes" => 60,
        "h" | "hr" | "hour" | "hours" => 3600,
        "d" | "day" | "days" => 86_400,
        "w" | "week" | "weeks" => 604_800,
        _ => return None,
    };
    number.checked_mul(unit)
}

/// The shortest exact way to write `secs` in one unit: `45m`, `2h`, `7d`, `90s`.
pub fn short_duration(secs: u64) -> String {
    for (unit, suffix) in [(86_400, "d"), (3600, "h"), (60, "m")] {
        if secs >= unit && secs.is_multiple_of(unit) {
            return format!("{}{suffix}", secs / unit);
        }
    }
    format!("{secs}s")
}

/// `secs` for a person: `15 min`, `1 hour`, `30 days`, `1 h 30 min`.
pub fn human_duration(secs: u64) -> String {
    if let Some((_, label)) = LIFETIME_PRESETS.iter().find(|(p, _)| *p == secs) {
        return (*label).to_owned();
    }
    let (days, rest) = (secs / 86_400, secs % 86_400);
    let (hours, rest) = (rest / 3600, rest % 3600);
    let (minutes, seconds) = (rest / 60, rest % 60);
    let parts: Vec<String> = [(days, "d"), (hours, "h"), (minutes, "min"), (seconds, "s")]
        .into_iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, unit)| format!("{n} {unit}"))
        .collect();
    if parts.is_empty() {
        "0 s".to_owned()
    } else {
        parts.join(" ")
    }
}

/// Unix seconds as `2026-11-23 14:05 UTC`.
pub fn utc(unix_s: i64) -> String {
    let days = unix_s.div_euclid(86_400);
    let secs = unix_s.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02} UTC",
        secs / 3600,
        secs % 3600 / 60
    )
}

/// The proleptic Gregorian date of a day count since 1970-01-01 (H. Hinnant's method).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn forms_keep_repeated_names_and_read_lists() {
        let form = Form::parse(b"a=1&m=x&m=y&s=read+write,%20admin&e=").unwrap();
        assert_eq!(form.get("a"), "1");
        assert_eq!(form.get("missing"), "");
        assert_eq!(form.all("m").collect::<Vec<_>>(), ["x", "y"]);
        assert!(form.has("m", "y"));
        assert_eq!(form.words("s").unwrap(), ["read", "write", "admin"]);
        assert_eq!(form.words("e"), None);
        assert_eq!(form.text("e"), None);
    }

    #[test]
    fn lifetimes_come_from_a_preset_or_are_written_out() {
        let read = |body: &str| Form::parse(body.as_bytes()).unwrap().lifetime("ttl");
        assert_eq!(read("ttl=900").unwrap(), Some(900));
        assert_eq!(read("ttl=other&ttl_other=2h").unwrap(), Some(7200));
        assert_eq!(read("ttl=other&ttl_other=45+min").unwrap(), Some(2700));
        assert_eq!(read("").unwrap(), None);
        assert_eq!(read("ttl=other&ttl_other=soon").unwrap_err().field, "ttl");
        assert_eq!(read("ttl=x").unwrap_err().field, "ttl");
        assert_eq!(parse_duration("99999999999999999999w"), None);
        for secs in [1, 59, 60, 900, 5400, 86_400, 2_592_000] {
            assert_eq!(parse_duration(&short_duration(secs)), Some(secs));
            let mut form = Form::default();
            set_lifetime(&mut form, "ttl", secs);
            assert_eq!(form.lifetime("ttl").unwrap(), Some(secs));
        }
    }

    #[test]
    fn durations_and_dates_read_well() {
        assert_eq!(human_duration(3600), "1 hour");
        assert_eq!(human_duration(5400), "1 h 30 min");
        assert_eq!(human_duration(0), "0 s");
        assert_eq!(utc(0), "1970-01-01 00:00 UTC");
        assert_eq!(utc(1_795_442_400 + 5 * 60), "2026-11-23 14:05 UTC");
        assert_eq!(utc(951_782_400), "2000-02-29 00:00 UTC");
    }

    #[test]
    fn an_error_on_a_list_item_shows_beside_the_list() {
        let mut fields = Fields::default();
        fields.fail(FieldError::new("scopes[2]", "bad scope"));
        assert_eq!(fields.error("scopes"), Some("bad scope"));
        assert_eq!(fields.error("name"), None);
    }
}
