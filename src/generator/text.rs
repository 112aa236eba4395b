//! Word lists the generator draws from: realistic names, unicode, pages and elements.

pub struct Place {
    pub country: &'static str,
    pub region: &'static str,
    pub city: &'static str,
    pub lat: f64,
    pub lng: f64,
    pub language: &'static str,
    pub dma: Option<&'static str>,
}

pub const PLACES: &[Place] = &[
    Place {
        country: "United States",
        region: "Michigan",
        city: "Grand Blanc",
        lat: 42.9275,
        lng: -83.6299,
        language: "English",
        dma: Some("Flint-Saginaw-Bay City, MI"),
    },
    Place {
        country: "United States",
        region: "California",
        city: "San Francisco",
        lat: 37.7749,
        lng: -122.4194,
        language: "English",
        dma: Some("San Francisco-Oakland-San Jose, CA"),
    },
    Place {
        country: "Germany",
        region: "Berlin",
        city: "Berlin",
        lat: 52.52,
        lng: 13.405,
        language: "German",
        dma: None,
    },
    Place {
        country: "Japan",
        region: "Tokyo",
        city: "東京",
        lat: 35.6762,
        lng: 139.6503,
        language: "Japanese",
        dma: None,
    },
    Place {
        country: "Brazil",
        region: "São Paulo",
        city: "São Paulo",
        lat: -23.5505,
        lng: -46.6333,
        language: "Portuguese",
        dma: None,
    },
    Place {
        country: "India",
        region: "Karnataka",
        city: "Bengaluru",
        lat: 12.9716,
        lng: 77.5946,
        language: "English",
        dma: None,
    },
    Place {
        country: "France",
        region: "Île-de-France",
        city: "Paris",
        lat: 48.8566,
        lng: 2.3522,
        language: "French",
        dma: None,
    },
    Place {
        country: "United Kingdom",
        region: "England",
        city: "London",
        lat: 51.5074,
        lng: -0.1278,
        language: "English",
        dma: None,
    },
    Place {
        country: "Bulgaria",
        region: "Sofia-Capital",
        city: "Sofia",
        lat: 42.6977,
        lng: 23.3219,
        language: "English",
        dma: None,
    },
    Place {
        country: "Côte d'Ivoire",
        region: "Abidjan",
        city: "Abidjan",
        lat: 5.36,
        lng: -4.0083,
        language: "French",
        dma: None,
    },
    Place {
        country: "Türkiye",
        region: "Istanbul",
        city: "İstanbul",
        lat: 41.0082,
        lng: 28.9784,
        language: "Turkish",
        dma: None,
    },
    Place {
        country: "South Korea",
        region: "Seoul",
        city: "서울",
        lat: 37.5665,
        lng: 126.978,
        language: "Korean",
        dma: None,
    },
    Place {
        country: "Kosovo",
        region: "Pristina",
        city: "Pristina",
        lat: 42.6629,
        lng: 21.1655,
        language: "Albanian",
        dma: None,
    },
    // Amplitude sometimes exports a name no ISO table knows.
    Place {
        country: "Unknown Land",
        region: "Nowhere",
        city: "Nowhere",
        lat: 0.5,
        lng: 0.5,
        language: "English",
        dma: None,
    },
];

pub const PAGES: &[(&str, &str)] = &[
    ("/", "Home"),
    ("/pricing", "Pricing"),
    ("/features", "Features"),
    ("/blog/how-we-migrated", "How we migrated – Blog"),
    ("/docs/getting-started", "Getting started · Docs"),
    ("/signup", "Sign up"),
    ("/login", "Log in"),
    ("/app/dashboard", "Dashboard"),
    ("/app/settings", "Settings"),
    ("/checkout", "Checkout"),
    ("/ja/料金", "料金プラン"),
];

pub const DOMAINS: &[&str] = &["example.com", "www.example.com", "app.example.com"];

pub const REFERRERS: &[(&str, &str)] = &[
    ("https://www.google.com/", "www.google.com"),
    ("https://news.ycombinator.com/", "news.ycombinator.com"),
    ("https://t.co/abc123", "t.co"),
    ("https://www.bing.com/search?q=example", "www.bing.com"),
];

pub const UTM_SOURCES: &[&str] = &["google", "newsletter", "twitter", "linkedin", "partner"];
pub const UTM_CAMPAIGNS: &[&str] = &["spring_sale", "launch-2024", "brand", "retargeting"];

/// (tag, classes, id, text, href)
pub const ELEMENTS: &[(&str, &str, &str, &str, &str)] = &[
    ("BUTTON", "btn primary", "cta", "Sign \"up\"", ""),
    ("A", "nav-link", "", "Pricing", "/pricing"),
    ("BUTTON", "btn  btn-secondary   ", "", "Add to cart", ""),
    (
        "A",
        "",
        "docs-link",
        "Read the docs →",
        "https://docs.example.com/",
    ),
    ("INPUT", "form-control", "email", "", ""),
    ("SELECT", "form-select plan-picker", "plan", "", ""),
    ("DIV", "card \"quoted\"", "", "Enterprise plan 🚀", ""),
    ("SPAN", "", "", "ログイン", ""),
    ("", "", "", "", ""),
    ("LI", "menu-item", "item-3", "Settings", "/app/settings"),
];

pub const SCREENS: &[&str] = &[
    "Home",
    "Search",
    "ProductDetail",
    "Cart",
    "Checkout",
    "Profile",
    "Settings",
    "Onboarding",
];

pub const PRODUCTS: &[(&str, f64)] = &[
    ("sku-basic-monthly", 9.0),
    ("sku-pro-monthly", 29.0),
    ("sku-pro-annual", 290.0),
    ("café-crème-beans", 14.5),
    ("sku-添加-1", 3.99),
];

pub const SEARCH_TERMS: &[&str] = &[
    "pricing",
    "export csv",
    "naïve bayes",
    "日本語",
    "emoji 😀",
    "tab\there",
    "quote \" mark",
];

pub const PLANS: &[&str] = &["free", "starter", "pro", "enterprise"];

pub const COMPANIES: &[&str] = &[
    "acme",
    "globex",
    "initech",
    "umbrella",
    "hooli",
    "stark-industries",
    "wayne-enterprises",
    "ООО Ромашка",
];

/// Ids PostHog refuses to merge, as real SDKs have sent them.
pub const REFUSED_IDS: &[&str] = &[
    "undefined",
    "null",
    "0",
    "anonymous",
    "None",
    "'null'",
    "\"undefined\"",
    "  ",
    "[object Object]",
    "guest",
];

pub const CARRIERS: &[&str] = &[
    "T-Mobile",
    "Verizon",
    "A1 BG",
    "Vodafone DE",
    "NTT DOCOMO",
    "--",
];

/// One of `items`, drawn with `rng` (an empty list gives "").
pub fn pick<'a>(rng: &mut impl rand::Rng, items: &[&'a str]) -> &'a str {
    use rand::seq::IndexedRandom;
    items.choose(rng).copied().unwrap_or_default()
}
