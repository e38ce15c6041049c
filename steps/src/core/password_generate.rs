//! `password.generate`: a random password, a secret from birth (masked everywhere), without a
//! command that would print it. Derived from the run's key (see `flow_engine::run_key`), so a
//! resume makes the same one again — what a finished step already wrote stays true — and the
//! journal never holds it.

use flow_engine::prelude::*;

pub struct PasswordGenerate;

const UPPER: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZ";
const LOWER: &str = "abcdefghijklmnopqrstuvwxyz";
const DIGITS: &str = "0123456789";
/// Punctuation that a URL's user info takes unencoded (`redis://:pw@host`), and an env file
/// or a double-quoted shell word as it is: no quotes, backslash, `$`, backtick, space, `#`,
/// `%`, `&`, `;`, `:`, `/`, `?`, `@` or brackets.
const SYMBOLS: &str = "!*+,-.=_~";

const MIN_LENGTH: u32 = 8;
const MAX_LENGTH: u32 = 1024;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordParams {
    /// How many characters (default 32; from 8 to 1024).
    #[schemars(range(min = 8, max = 1024))]
    pub length: Option<u32>,
    /// Use upper-case letters A-Z (default: true).
    pub upper: Option<bool>,
    /// Use lower-case letters a-z (default: true).
    pub lower: Option<bool>,
    /// Use digits 0-9 (default: true).
    pub digits: Option<bool>,
    /// Use the symbols `!*+,-.=_~` (default: false), none of which needs encoding in a URL
    /// or quoting in an env file or a double-quoted shell word.
    pub symbols: Option<bool>,
    /// Exactly these characters instead of the classes, each once (`"0123456789abcdef"`).
    #[schemars(length(min = 2), extend("format" = "distinct-characters"))]
    pub alphabet: Option<String>,
    /// With the classes: at least this many characters of each class used (default 1).
    pub min_per_class: Option<u32>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct PasswordOutputs {
    /// The password: a secret, masked everywhere.
    pub value: Secret,
    /// How many bits of randomness it carries (length × log2 of the alphabet's size).
    pub bits: u32,
}

/// What to generate, checked.
struct Recipe {
    length: u32,
    /// The characters, and the class each is in.
    alphabet: Vec<char>,
    /// Each class used, as its characters, with `min_per_class`.
    classes: Vec<&'static str>,
    min_per_class: u32,
}

impl Recipe {
    fn of(params: &PasswordParams) -> Result<Recipe, String> {
        let length = params.length.unwrap_or(32);
        if !(MIN_LENGTH..=MAX_LENGTH).contains(&length) {
            return Err(format!(
                "`length` must be from {MIN_LENGTH} to {MAX_LENGTH}, found {length}"
            ));
        }
        let flags = [
            ("upper", params.upper, true, UPPER),
            ("lower", params.lower, true, LOWER),
            ("digits", params.digits, true, DIGITS),
            ("symbols", params.symbols, false, SYMBOLS),
        ];
        if let Some(alphabet) = &params.alphabet {
            if let Some((name, ..)) = flags.iter().find(|(_, given, ..)| given.is_some()) {
                return Err(format!(
                    "give `alphabet` or the classes (`{name}`, …), not both"
                ));
            }
            if params.min_per_class.is_some() {
                return Err("`min_per_class` applies to the classes, not to `alphabet`".into());
            }
            let chars: Vec<char> = alphabet.chars().collect();
            if let Some(c) = chars.iter().find(|c| c.is_control()) {
                return Err(format!("`alphabet` holds a control character ({:?})", c));
            }
            if let Some(twice) = first_repeated(&chars) {
                return Err(format!("`alphabet` has `{twice}` more than once"));
            }
            if chars.len() < 2 {
                return Err("`alphabet` needs at least 2 characters".into());
            }
            return Ok(Recipe {
                length,
                alphabet: chars,
                classes: Vec::new(),
                min_per_class: 0,
            });
        }
        let classes: Vec<&'static str> = flags
            .iter()
            .filter(|(_, given, default, _)| given.unwrap_or(*default))
            .map(|(.., chars)| *chars)
            .collect();
        if classes.is_empty() {
            return Err(
                "no characters to use: turn on one of `upper`, `lower`, `digits`, `symbols`, or give `alphabet`"
                    .into(),
            );
        }
        let min_per_class = params.min_per_class.unwrap_or(1);
        if u64::from(min_per_class) * classes.len() as u64 > u64::from(length) {
            return Err(format!(
                "`min_per_class` {min_per_class} × {} classes is more than `length` {length}",
                classes.len()
            ));
        }
        Ok(Recipe {
            length,
            alphabet: classes.iter().flat_map(|c| c.chars()).collect(),
            classes,
            min_per_class,
        })
    }

    fn bits(&self) -> u32 {
        (f64::from(self.length) * (self.alphabet.len() as f64).log2()).floor() as u32
    }

    /// What the plan and the key derivation call it: `32 characters of A-Z a-z 0-9`.
    fn shown(&self) -> String {
        let from = if self.classes.is_empty() {
            format!("{} given characters", self.alphabet.len())
        } else {
            self.classes
                .iter()
                .map(|c| match *c {
                    UPPER => "A-Z".to_string(),
                    LOWER => "a-z".to_string(),
                    DIGITS => "0-9".to_string(),
                    other => other.to_string(),
                })
                .collect::<Vec<_>>()
                .join(" ")
        };
        format!("{} characters of {from}", self.length)
    }

    /// The derivation's purpose: everything that decides the password.
    fn purpose(&self) -> String {
        let alphabet: String = self.alphabet.iter().collect();
        format!(
            "password.generate v1\0length={}\0alphabet={alphabet}\0min_per_class={}",
            self.length, self.min_per_class
        )
    }

    /// Whether `password` has `min_per_class` characters of each class.
    fn fits(&self, password: &[char]) -> bool {
        self.classes.iter().all(|class| {
            password.iter().filter(|c| class.contains(**c)).count() >= self.min_per_class as usize
        })
    }
}

fn first_repeated(chars: &[char]) -> Option<char> {
    let mut seen = std::collections::HashSet::new();
    chars.iter().copied().find(|c| !seen.insert(*c))
}

/// Tries at most this many passwords for one that has every class: with 8 characters, 4
/// classes and 2 of each, about 1 in 30 fits, so this is never reached in practice.
const TRIES: u32 = 100_000;

impl StepType for PasswordGenerate {
    const NAME: &'static str = "password.generate";
    const SUMMARY: &'static str =
        "Generate a random password (a secret from birth; the same again on a resume)";
    // No side effects, and nothing to look at before apply.
    const EFFECT: Effect = Effect::Read;
    const RUNS_IN_PLAN: bool = false;
    const EXAMPLE: &'static str = r#"new_password:
  type: password.generate
  with: { length: 40, symbols: true }
hex_token:
  type: password.generate
  with: { length: 64, alphabet: "0123456789abcdef" }"#;
    type Params = PasswordParams;
    type Outputs = PasswordOutputs;

    async fn describe(&self, params: &PasswordParams, _: &PlanContext) -> Description {
        match Recipe::of(params) {
            Ok(recipe) => Description::new(
                Action::Read,
                format!("{} (generated at apply)", recipe.shown()),
            )
            .detail(format!("{} bits of randomness", recipe.bits())),
            Err(e) => Description::new(Action::Failed, e),
        }
    }

    async fn apply(
        &self,
        params: PasswordParams,
        ctx: &StepContext,
    ) -> Result<PasswordOutputs, StepError> {
        let recipe = Recipe::of(&params).map_err(StepError::Failed)?;
        let mut bytes = ctx.derived_bytes(&recipe.purpose())?;
        let size = recipe.alphabet.len() as u32;
        for _ in 0..TRIES {
            let password: Vec<char> = (0..recipe.length)
                .map(|_| recipe.alphabet[bytes.below(size) as usize])
                .collect();
            if recipe.fits(&password) {
                let value: String = password.into_iter().collect();
                // Masked from this moment, before anything could print it.
                ctx.add_secret(&serde_json::Value::String(value.clone()));
                return Ok(PasswordOutputs {
                    value: Secret(value),
                    bits: recipe.bits(),
                });
            }
        }
        Err(StepError::failed(format!(
            "no password of {} with {} of each class after {TRIES} tries: lower `min_per_class`",
            recipe.shown(),
            recipe.min_per_class
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(yaml: serde_json::Value) -> PasswordParams {
        serde_json::from_value(yaml).expect("params")
    }

    #[test]
    fn recipes_check_their_params() {
        let ok = Recipe::of(&params(serde_json::json!({}))).expect("defaults");
        assert_eq!(ok.length, 32);
        assert_eq!(ok.alphabet.len(), 62);
        assert_eq!(ok.bits(), 190);
        for (given, error) in [
            (serde_json::json!({ "length": 4 }), "from 8 to 1024"),
            (
                serde_json::json!({ "alphabet": "abca" }),
                "`a` more than once",
            ),
            (
                serde_json::json!({ "alphabet": "ab", "upper": true }),
                "not both",
            ),
            (
                serde_json::json!({ "upper": false, "lower": false, "digits": false }),
                "no characters",
            ),
            (
                serde_json::json!({ "length": 8, "min_per_class": 3 }),
                "more than `length` 8",
            ),
        ] {
            let found = Recipe::of(&params(given.clone())).err().expect("an error");
            assert!(found.contains(error), "{given}: {found}");
        }
    }

    #[test]
    fn a_password_fits_its_classes() {
        let recipe = Recipe::of(&params(serde_json::json!({ "symbols": true }))).expect("ok");
        assert!(recipe.fits(&"aA1!".chars().collect::<Vec<_>>()));
        assert!(!recipe.fits(&"aA1b".chars().collect::<Vec<_>>()));
    }
}
