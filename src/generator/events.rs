//! What happens in a row: the event a session step is (by platform and source) with its
//! properties, the user's properties, and group updates. Draws happen in field order, as
//! [`super::rows`] requires.

use rand::Rng;
use rand::seq::IndexedRandom;
use serde_json::{Value, json};

use super::population::Source;
use super::text;
use super::text::pick;
pub(super) fn user_properties(
    rng: &mut impl Rng,
    user: Option<(&str, Option<&str>, &str)>,
    login: bool,
) -> Value {
    let Some((plan, utm_source, email)) = user else {
        return match rng.random_range(0..4) {
            0 => Value::Null,
            1 => json!({}),
            _ => {
                json!({"initial_utm_source": utm_or_empty(rng), "initial_referring_domain": "EMPTY", "initial_gclid": "EMPTY"})
            }
        };
    };
    let utm = utm_source.map_or(json!("EMPTY"), |source| json!(source));
    if login {
        // An identify call: operator objects, as Amplitude's identify API records them.
        return json!({
            "$set": {"plan": plan, "email": email, "initial_utm_campaign": "EMPTY"},
            "$setOnce": {"initial_utm_source": utm, "first_seen_plan": plan},
            "$add": {"logins": 1},
            "$unset": {"trial_banner": "-"},
        });
    }
    match rng.random_range(0..10) {
        0 => {
            json!({"plan": plan, "$set": {"plan": plan, "last_seen_page": "/pricing"}, "$append": {"features": "export"}})
        }
        1 => json!([plan]),
        _ => json!({
            "plan": plan,
            "email": email,
            "initial_utm_source": utm,
            "initial_gclid": "EMPTY",
            "initial_referrer": "EMPTY",
            "cohorts": ["beta", "power-users"],
            "settings": {"theme": "dark", "notifications": {"email": true}},
            "nickname": if rng.random_bool(0.1) { json!("Zoë 🌟") } else { Value::Null },
        }),
    }
}

pub(super) fn utm_or_empty(rng: &mut impl Rng) -> Value {
    if rng.random_bool(0.5) {
        json!("EMPTY")
    } else {
        json!(pick(rng, text::UTM_SOURCES))
    }
}

pub(super) fn group_identify(rng: &mut impl Rng, company: Option<&str>) -> (Value, Value, bool) {
    let company = company.unwrap_or_else(|| pick(rng, text::COMPANIES));
    match rng.random_range(0..10) {
        0 => (json!({}), json!({}), true),
        1 => (json!({"company": []}), json!({}), true),
        2 => (
            json!({"company": company, "team": ["core"]}),
            json!({"company": {company: {"plan": "pro"}}, "team": {"core": {"size": 12}}}),
            false,
        ),
        _ => (
            json!({"company": [company]}),
            json!({"company": {company: {"plan": "enterprise", "seats": rng.random_range(5..500), "industry": "Software", "address": {"city": "Berlin"}}}}),
            false,
        ),
    }
}

pub(super) fn page_properties(rng: &mut impl Rng) -> serde_json::Map<String, Value> {
    let (path, title) = *text::PAGES.choose(rng).unwrap_or(&text::PAGES[0]);
    let domain = pick(rng, text::DOMAINS);
    let url = format!("https://{domain}{path}");
    let mut props = serde_json::Map::new();
    props.insert("[Amplitude] Page Domain".into(), json!(domain));
    props.insert("[Amplitude] Page Path".into(), json!(path));
    props.insert("[Amplitude] Page Title".into(), json!(title));
    props.insert("[Amplitude] Page URL".into(), json!(url));
    if rng.random_bool(0.4) {
        let source = pick(rng, text::UTM_SOURCES);
        let campaign = pick(rng, text::UTM_CAMPAIGNS);
        props.insert(
            "[Amplitude] Page Location".into(),
            json!(format!("{url}?utm_source={source}&utm_campaign={campaign}")),
        );
        props.insert("utm_source".into(), json!(source));
        props.insert("utm_campaign".into(), json!(campaign));
        if rng.random_bool(0.3) {
            props.insert(
                "gclid".into(),
                json!(format!("Cj0K{:x}", rng.random::<u32>())),
            );
        }
    } else if rng.random_bool(0.5) {
        props.insert("[Amplitude] Page Location".into(), json!(url));
    }
    if rng.random_bool(0.5) {
        let (referrer, domain) = *text::REFERRERS.choose(rng).unwrap_or(&text::REFERRERS[0]);
        props.insert("referrer".into(), json!(referrer));
        props.insert("referring_domain".into(), json!(domain));
    }
    props.insert(
        "[Amplitude] Page Counter".into(),
        json!(rng.random_range(1..20)),
    );
    props.insert(
        "[Amplitude] Page View ID".into(),
        json!(format!("{:x}", rng.random::<u64>())),
    );
    props.insert(
        "[Amplitude] Viewport Height".into(),
        json!(rng.random_range(600..1400)),
    );
    props.insert(
        "[Amplitude] Viewport Width".into(),
        json!(rng.random_range(360..2560)),
    );
    props
}

pub(super) fn element_properties(rng: &mut impl Rng, props: &mut serde_json::Map<String, Value>) {
    let (tag, class, id, text, href) = *text::ELEMENTS.choose(rng).unwrap_or(&text::ELEMENTS[0]);
    let mut set = |key: &str, value: &str| {
        if !value.is_empty() {
            props.insert(key.into(), json!(value));
        }
    };
    set("[Amplitude] Element Tag", tag);
    set("[Amplitude] Element Class", class);
    set("[Amplitude] Element ID", id);
    set("[Amplitude] Element Text", text);
    set("[Amplitude] Element Href", href);
    props.insert(
        "[Amplitude] Element Position Left".into(),
        json!(rng.random_range(0..1200)),
    );
    props.insert(
        "[Amplitude] Element Position Top".into(),
        json!(rng.random_range(0..4000)),
    );
    props.insert(
        "[Amplitude] Element Hierarchy".into(),
        json!([{"tag": "body"}, {"tag": "div", "classes": ["container"]}]),
    );
    if rng.random_bool(0.01) {
        // A very long text: the chain keeps its first 400 characters.
        props.insert(
            "[Amplitude] Element Text".into(),
            json!("Lorem ipsum “dolor” sit amet ".repeat(30)),
        );
    }
}

pub(super) fn revenue_properties(rng: &mut impl Rng, props: &mut serde_json::Map<String, Value>) {
    let (product, price) = *text::PRODUCTS.choose(rng).unwrap_or(&text::PRODUCTS[0]);
    let quantity = rng.random_range(1..4);
    props.insert("$productId".into(), json!(product));
    props.insert("$price".into(), json!(price));
    props.insert("$quantity".into(), json!(quantity));
    props.insert("$revenue".into(), json!(price * f64::from(quantity)));
    props.insert(
        "$revenueType".into(),
        json!(pick(rng, &["purchase", "subscription", "refund"])),
    );
    if rng.random_bool(0.5) {
        props.insert("$currency".into(), json!(pick(rng, &["USD", "EUR", "JPY"])));
    }
    props.insert("cart".into(), json!({"items": [{"sku": product, "qty": quantity, "price": price}], "coupon": Value::Null}));
}

/// Picks the next event of a session and its `event_properties`.
pub(super) fn choose_event(
    rng: &mut impl Rng,
    source: Source,
    first_launch: bool,
    counter: i64,
) -> (String, Value) {
    let mut props = serde_json::Map::new();
    let name = match source {
        Source::Web => web_event(rng, &mut props),
        Source::Ios | Source::Android => mobile_event(rng, first_launch, &mut props),
        Source::HttpApi => http_api_event(rng, counter, &mut props),
        Source::Segment => segment_event(rng, &mut props),
    };
    (name, Value::Object(props))
}

/// A web SDK event: page views, autocapture, revenue, searches, features.
pub(super) fn web_event(rng: &mut impl Rng, props: &mut serde_json::Map<String, Value>) -> String {
    match rng.random_range(0..100) {
        0..=34 => {
            *props = page_properties(rng);
            "[Amplitude] Page Viewed".into()
        }
        35..=54 => {
            *props = page_properties(rng);
            element_properties(rng, props);
            "[Amplitude] Element Clicked".into()
        }
        55..=59 => {
            element_properties(rng, props);
            "[Amplitude] Element Changed".into()
        }
        60..=62 => {
            props.insert("[Amplitude] Form ID".into(), json!("signup-form"));
            props.insert("[Amplitude] Form Destination".into(), json!("/api/signup"));
            if rng.random_bool(0.3) {
                element_properties(rng, props);
            }
            "[Amplitude] Form Submitted".into()
        }
        63 => {
            element_properties(rng, props);
            "[Amplitude] Rage Click".into()
        }
        64 => {
            element_properties(rng, props);
            "[Amplitude] Dead Click".into()
        }
        65..=66 => "[Amplitude] Form Started".into(),
        67 => {
            props.insert("[Amplitude] File Name".into(), json!("report-2024.pdf"));
            "[Amplitude] File Downloaded".into()
        }
        68..=69 => {
            props.insert(
                "[Amplitude] LCP".into(),
                json!({"value": rng.random_range(500.0..4000.0), "rating": "good"}),
            );
            "[Amplitude] Web Vitals".into()
        }
        70..=72 => {
            revenue_properties(rng, props);
            "Purchase".into()
        }
        73..=77 => {
            props.insert("query".into(), json!(pick(rng, text::SEARCH_TERMS)));
            props.insert("results".into(), json!(rng.random_range(0..50)));
            "Searched".into()
        }
        78..=82 => {
            props.insert("product".into(), json!({"id": pick(rng, &["sku-1", "sku-2"]), "tags": ["new", "sale"], "price": 12.5}));
            "Added To Cart".into()
        }
        83 => "Signed Up".into(),
        84 => {
            props.insert("$set".into(), json!({"sneaky": true}));
            props.insert("token".into(), json!("phc_should_not_pass"));
            props.insert("distinct_id".into(), json!("spoofed"));
            props.insert("$session_id".into(), json!("spoofed"));
            "Feature Used".into()
        }
        85..=86 => "$groupidentify".into(),
        87 => "Übersicht geöffnet 📊".into(),
        _ => {
            props.insert(
                "feature".into(),
                json!(pick(rng, &["export", "dashboards", "alerts"])),
            );
            props.insert("duration_ms".into(), json!(rng.random_range(10..10_000)));
            props.insert("ratio".into(), json!(0.25));
            props.insert("flags".into(), json!([true, false, Value::Null]));
            "Feature Used".into()
        }
    }
}

/// An iOS or Android SDK event; the first on a device is its install.
pub(super) fn mobile_event(
    rng: &mut impl Rng,
    first_launch: bool,
    props: &mut serde_json::Map<String, Value>,
) -> String {
    match rng.random_range(0..100) {
        _ if first_launch => "[Amplitude] Application Installed".into(),
        0..=11 => "[Amplitude] Application Opened".into(),
        12..=51 => {
            props.insert(
                "[Amplitude] Screen Name".into(),
                json!(pick(rng, text::SCREENS)),
            );
            "[Amplitude] Screen Viewed".into()
        }
        52..=57 => "[Amplitude] Application Backgrounded".into(),
        58 => {
            props.insert("[Amplitude] Version".into(), json!("3.1.4"));
            props.insert("[Amplitude] Previous Version".into(), json!("3.0.0"));
            "[Amplitude] Application Updated".into()
        }
        59..=60 => {
            props.insert("[Amplitude] Link URL".into(), json!("myapp://promo/spring"));
            "[Amplitude] Deep Link Opened".into()
        }
        61..=64 => {
            revenue_properties(rng, props);
            "revenue_amount".into()
        }
        65..=66 => "$groupidentify".into(),
        _ => {
            props.insert("screen".into(), json!(pick(rng, text::SCREENS)));
            props.insert("items".into(), json!(rng.random_range(0..10)));
            "Item Viewed".into()
        }
    }
}

/// An event sent through Amplitude's HTTP API by a backend.
pub(super) fn http_api_event(
    rng: &mut impl Rng,
    counter: i64,
    props: &mut serde_json::Map<String, Value>,
) -> String {
    match rng.random_range(0..10) {
        0..=3 => {
            props.insert("Total Price".into(), json!(6396.0));
            props.insert("Drop Id".into(), json!(counter % 7));
            props.insert("Drop Type".into(), json!("Sale"));
            "Property Drop Purchased".into()
        }
        4..=5 => {
            revenue_properties(rng, props);
            "Invoice Paid".into()
        }
        6 => "$groupidentify".into(),
        _ => {
            props.insert("plan".into(), json!(pick(rng, text::PLANS)));
            "Subscription Renewed".into()
        }
    }
}

/// An event forwarded by Segment.
pub(super) fn segment_event(
    rng: &mut impl Rng,
    props: &mut serde_json::Map<String, Value>,
) -> String {
    match rng.random_range(0..10) {
        0..=3 => {
            *props = page_properties(rng);
            "[Amplitude] Page Viewed".into()
        }
        4..=6 => {
            props.insert("product_id".into(), json!("sku-2"));
            props.insert("name".into(), json!("Pro plan"));
            "Product Viewed".into()
        }
        _ => {
            revenue_properties(rng, props);
            "Order Completed".into()
        }
    }
}
