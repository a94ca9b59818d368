//! Settings read from the environment.

/// The whole number in environment variable `name`, else `default`; a value that is not one
/// is reported (never echoed) and the default used.
pub fn env_whole_number(name: &str, default: u64) -> u64 {
    let Some(value) = std::env::var_os(name) else {
        return default;
    };
    match value.to_str().and_then(|text| text.trim().parse().ok()) {
        Some(number) => number,
        None => {
            tracing::warn!(
                "{name} is not a whole number from 0 to {}; using {default}",
                u64::MAX
            );
            default
        }
    }
}
