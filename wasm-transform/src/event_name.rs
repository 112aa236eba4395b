//! §7 Event names: Amplitude's autocapture and lifecycle events under PostHog's names.

use crate::autocapture::autocapture_type;

/// The PostHog event name of an Amplitude event type (`$identify` and `$groupidentify` are
/// handled by their own rules).
pub fn posthog_event_name(event_type: &str) -> &str {
    match event_type {
        "[Amplitude] Page Viewed" => "$pageview",
        "[Amplitude] Screen Viewed" => "$screen",
        "[Amplitude] Rage Click" => "$rageclick",
        "[Amplitude] Dead Click" => "$dead_click",
        "[Amplitude] Application Installed"
        | "[Amplitude] Application Updated"
        | "[Amplitude] Application Opened"
        | "[Amplitude] Application Backgrounded" => &event_type["[Amplitude] ".len()..],
        autocapture if autocapture_type(autocapture).is_some() => "$autocapture",
        unchanged => unchanged,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rule_7_names_match_case_sensitively() {
        assert_eq!(posthog_event_name("[Amplitude] Page Viewed"), "$pageview");
        assert_eq!(
            posthog_event_name("[amplitude] page viewed"),
            "[amplitude] page viewed"
        );
        assert_eq!(
            posthog_event_name("[Amplitude] Application Opened"),
            "Application Opened"
        );
        assert_eq!(
            posthog_event_name("[Amplitude] Form Submitted"),
            "$autocapture"
        );
    }
}
