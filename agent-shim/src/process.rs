//! Turning a Titus container definition plus the image's defaults into the process to run.
//!
//! Docker rules (titus-semantics §2.6): `entryPoint` replaces the image ENTRYPOINT and then the
//! image CMD is ignored; `command` replaces CMD; a single empty string `[""]` clears the value; an
//! empty list means "not given". The legacy shell-splitting mode (Pod annotation
//! `pod.titus.netflix.com/entrypoint-shell-splitting-enabled`) is [`shell_split`].

use std::collections::BTreeMap;

use crate::runtime::{ImageConfig, ProcessSpec};

/// `PATH` used when neither the image nor the task sets one (Docker's default).
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Why no process could be resolved.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProcessError {
    /// Neither the task nor the image names a program.
    #[error(
        "no command: the task sets no entryPoint or command and the image has no ENTRYPOINT or CMD"
    )]
    NoCommand,
    /// The shell-split entry point has an unterminated quote or a trailing backslash.
    #[error("cannot split entry point {entry_point:?}: {reason}")]
    ShellSplit {
        /// The string given.
        entry_point: String,
        /// What is wrong.
        reason: &'static str,
    },
}

/// Resolves argv, environment and working directory.
///
/// `env` overrides image `Env` entries of the same name; image order is kept, then the task's
/// variables in name order. `working_dir` (empty = not given) overrides the image `WorkingDir`,
/// else `/`.
///
/// # Errors
/// [`ProcessError::NoCommand`] when the resolved argv is empty.
pub fn resolve_process(
    image: &ImageConfig,
    entry_point: &[String],
    command: &[String],
    env: &BTreeMap<String, String>,
    working_dir: &str,
) -> Result<ProcessSpec, ProcessError> {
    let args = resolve_args(image, entry_point, command)?;
    let working_dir = if !working_dir.is_empty() {
        working_dir.to_owned()
    } else {
        image
            .working_dir
            .clone()
            .filter(|w| !w.is_empty())
            .unwrap_or_else(|| "/".to_owned())
    };
    Ok(ProcessSpec {
        args,
        env: merge_env(&image.env, env),
        working_dir,
    })
}

/// argv by the Docker rules.
///
/// # Errors
/// [`ProcessError::NoCommand`] when the result is empty.
pub fn resolve_args(
    image: &ImageConfig,
    entry_point: &[String],
    command: &[String],
) -> Result<Vec<String>, ProcessError> {
    let entry_given = !entry_point.is_empty();
    let entry: &[String] = if entry_given {
        cleared_or(entry_point)
    } else {
        &image.entrypoint
    };
    let cmd: &[String] = if !command.is_empty() {
        cleared_or(command)
    } else if entry_given {
        &[]
    } else {
        &image.cmd
    };
    let args: Vec<String> = entry.iter().chain(cmd).cloned().collect();
    if args.is_empty() {
        Err(ProcessError::NoCommand)
    } else {
        Ok(args)
    }
}

/// `[""]` clears; anything else is used as given.
fn cleared_or(value: &[String]) -> &[String] {
    if value.len() == 1 && value[0].is_empty() {
        &[]
    } else {
        value
    }
}

/// Image `NAME=value` entries overridden by `env`, plus a default `PATH` when none is set.
pub fn merge_env(image_env: &[String], env: &BTreeMap<String, String>) -> Vec<(String, String)> {
    let mut merged: Vec<(String, String)> = Vec::with_capacity(image_env.len() + env.len() + 1);
    for entry in image_env {
        let (name, value) = entry.split_once('=').unwrap_or((entry.as_str(), ""));
        if name.is_empty() || env.contains_key(name) {
            continue;
        }
        match merged.iter_mut().find(|(n, _)| n == name) {
            Some(existing) => existing.1 = value.to_owned(),
            None => merged.push((name.to_owned(), value.to_owned())),
        }
    }
    merged.extend(env.iter().map(|(n, v)| (n.clone(), v.clone())));
    if !merged.iter().any(|(n, _)| n == "PATH") {
        merged.push(("PATH".to_owned(), DEFAULT_PATH.to_owned()));
    }
    merged
}

/// Splits a string into words the way a POSIX shell does for plain words (Docker's shell-word
/// rules): blanks separate words; single quotes keep everything literally; double quotes keep
/// everything but `\` before `"`, `\`, `$` or `` ` ``; a backslash outside quotes escapes the next
/// character. No expansion is done.
///
/// # Errors
/// [`ProcessError::ShellSplit`] on an unterminated quote or a trailing backslash.
pub fn shell_split(input: &str) -> Result<Vec<String>, ProcessError> {
    let fail = |reason| ProcessError::ShellSplit {
        entry_point: input.to_owned(),
        reason,
    };
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = input.chars();
    while let Some(c) = chars.next() {
        match c {
            ' ' | '\t' | '\n' => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            '\\' => {
                word.push(chars.next().ok_or_else(|| fail("trailing backslash"))?);
                in_word = true;
            }
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(q) => word.push(q),
                        None => return Err(fail("unterminated single quote")),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(e @ ('"' | '\\' | '$' | '`')) => word.push(e),
                            Some(other) => {
                                word.push('\\');
                                word.push(other);
                            }
                            None => return Err(fail("unterminated double quote")),
                        },
                        Some(q) => word.push(q),
                        None => return Err(fail("unterminated double quote")),
                    }
                }
            }
            other => {
                word.push(other);
                in_word = true;
            }
        }
    }
    if in_word {
        words.push(word);
    }
    Ok(words)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    fn image() -> ImageConfig {
        ImageConfig {
            entrypoint: v(&["/bin/echo", "image-entrypoint"]),
            cmd: v(&["image-cmd"]),
            env: v(&["PATH=/bin", "SHARED=from-image", "IMAGE_ONLY=from-image"]),
            working_dir: Some("/tmp".into()),
            user: None,
        }
    }

    #[test]
    fn docker_rules_combine_entry_point_and_command_with_image_defaults() {
        type Case<'a> = (
            &'a str,
            &'a [&'a str],
            &'a [&'a str],
            Result<&'a [&'a str], ProcessError>,
        );
        let cases: [Case; 8] = [
            (
                "image defaults",
                &[],
                &[],
                Ok(&["/bin/echo", "image-entrypoint", "image-cmd"]),
            ),
            (
                "entryPoint only: image CMD ignored",
                &["/bin/echo", "ep"],
                &[],
                Ok(&["/bin/echo", "ep"]),
            ),
            (
                "command only: image ENTRYPOINT kept",
                &[],
                &["c1", "c2"],
                Ok(&["/bin/echo", "image-entrypoint", "c1", "c2"]),
            ),
            (
                "both",
                &["/bin/echo", "ep"],
                &["c1"],
                Ok(&["/bin/echo", "ep", "c1"]),
            ),
            (
                "entryPoint cleared, command given",
                &[""],
                &["/bin/echo", "only-command"],
                Ok(&["/bin/echo", "only-command"]),
            ),
            (
                "command cleared keeps image ENTRYPOINT",
                &[],
                &[""],
                Ok(&["/bin/echo", "image-entrypoint"]),
            ),
            (
                "entryPoint cleared and no command",
                &[""],
                &[],
                Err(ProcessError::NoCommand),
            ),
            ("both cleared", &[""], &[""], Err(ProcessError::NoCommand)),
        ];
        for (name, entry, command, want) in cases {
            let got = resolve_args(&image(), &v(entry), &v(command));
            assert_eq!(got, want.map(v), "{name}");
        }
    }

    #[test]
    fn an_image_without_entrypoint_or_cmd_needs_a_task_command() {
        let empty = ImageConfig::default();
        assert_eq!(resolve_args(&empty, &[], &[]), Err(ProcessError::NoCommand));
        assert_eq!(
            resolve_args(&empty, &[], &v(&["/bin/true"])),
            Ok(v(&["/bin/true"]))
        );
    }

    #[test]
    fn task_env_overrides_image_env_and_path_gets_a_default() {
        let env = BTreeMap::from([
            ("SHARED".to_string(), "from-task".to_string()),
            ("A_TASK".to_string(), "1".to_string()),
        ]);
        let got = merge_env(&image().env, &env);
        assert_eq!(
            got,
            vec![
                ("PATH".to_string(), "/bin".to_string()),
                ("IMAGE_ONLY".to_string(), "from-image".to_string()),
                ("A_TASK".to_string(), "1".to_string()),
                ("SHARED".to_string(), "from-task".to_string()),
            ]
        );
        let no_path = merge_env(&[], &BTreeMap::new());
        assert_eq!(
            no_path,
            vec![("PATH".to_string(), DEFAULT_PATH.to_string())]
        );
    }

    #[test]
    fn working_dir_comes_from_the_task_then_the_image_then_root() {
        let env = BTreeMap::new();
        let cmd = v(&["x"]);
        let task = resolve_process(&image(), &cmd, &[], &env, "/srv").unwrap();
        assert_eq!(task.working_dir, "/srv");
        let img = resolve_process(&image(), &cmd, &[], &env, "").unwrap();
        assert_eq!(img.working_dir, "/tmp");
        let root = resolve_process(&ImageConfig::default(), &cmd, &[], &env, "").unwrap();
        assert_eq!(root.working_dir, "/");
    }

    #[test]
    fn shell_split_follows_shell_word_rules() {
        let cases: [(&str, &[&str]); 8] = [
            ("/bin/sh -c 'echo hi'", &["/bin/sh", "-c", "echo hi"]),
            ("  a   b  ", &["a", "b"]),
            (r#"echo "a \"b\" \n""#, &["echo", r#"a "b" \n"#]),
            (r"a\ b c", &["a b", "c"]),
            ("''", &[""]),
            ("x'y'\"z\"", &["xyz"]),
            ("", &[]),
            ("$HOME `x`", &["$HOME", "`x`"]),
        ];
        for (input, want) in cases {
            assert_eq!(shell_split(input), Ok(v(want)), "{input}");
        }
        for bad in ["'open", "\"open", "end\\"] {
            assert!(
                matches!(shell_split(bad), Err(ProcessError::ShellSplit { .. })),
                "{bad}"
            );
        }
    }
}
