//! §5.3 Autocapture: `$event_type` and a one-element `$elements_chain` in the syntax PostHog's
//! own SDKs produce, so PostHog's autocapture filters work on migrated clicks.

use serde_json::{Map, Value};

/// Longest element text kept in the chain, in characters.
const MAX_TEXT_CHARS: usize = 400;

/// PostHog's `$event_type` of an autocapture event, by Amplitude event type.
pub fn autocapture_type(event_type: &str) -> Option<&'static str> {
    match event_type {
        "[Amplitude] Element Clicked" => Some("click"),
        "[Amplitude] Element Changed" => Some("change"),
        "[Amplitude] Form Submitted" => Some("submit"),
        _ => None,
    }
}

/// The chain of one element, from the original `event_properties` (before renames).
pub fn elements_chain(event_type: &str, event_properties: &Map<String, Value>) -> String {
    let text_of = |key: &str| {
        event_properties
            .get(key)
            .and_then(Value::as_str)
            .filter(|text| !text.is_empty())
    };
    let mut chain = match text_of("[Amplitude] Element Tag") {
        Some(tag) => tag.to_lowercase(),
        None if event_type == "[Amplitude] Form Submitted" => "form".to_owned(),
        None => "div".to_owned(),
    };
    let class = text_of("[Amplitude] Element Class");
    for class_name in class.unwrap_or_default().split_whitespace() {
        chain.push('.');
        chain.extend(class_name.chars().filter(|c| *c != '"'));
    }
    chain.push(':');
    let mut attribute = |key: &str, value: &str| {
        chain.push_str(key);
        chain.push_str("=\"");
        chain.push_str(&value.replace('"', "\\\""));
        chain.push('"');
    };
    if let Some(class) = class {
        attribute("attr__class", class);
    }
    if let Some(id) = text_of("[Amplitude] Element ID") {
        attribute("attr__id", id);
        attribute("attr_id", id);
    }
    if let Some(href) = text_of("[Amplitude] Element Href") {
        attribute("href", href);
    }
    attribute("nth-child", "0");
    attribute("nth-of-type", "0");
    if let Some(text) = text_of("[Amplitude] Element Text") {
        let cut = text
            .char_indices()
            .nth(MAX_TEXT_CHARS)
            .map_or(text, |(end, _)| &text[..end]);
        attribute("text", cut);
    }
    chain
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn rule_5_3_builds_the_example_chain_of_the_contract() {
        let Value::Object(properties) = json!({
            "[Amplitude] Element Tag": "BUTTON",
            "[Amplitude] Element Class": "btn primary",
            "[Amplitude] Element ID": "cta",
            "[Amplitude] Element Text": "Sign \"up\"",
        }) else {
            panic!("object")
        };
        assert_eq!(
            elements_chain("[Amplitude] Element Clicked", &properties),
            r#"button.btn.primary:attr__class="btn primary"attr__id="cta"attr_id="cta"nth-child="0"nth-of-type="0"text="Sign \"up\"""#
        );
    }
}
