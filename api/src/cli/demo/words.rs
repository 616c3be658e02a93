//! The vocabulary of the demo data set: names, queues, ticket subjects,
//! comments and tags. Plain lists, so the generator stays readable.

pub const FIRST_NAMES: &[&str] = &[
    "Olivia", "Liam", "Emma", "Noah", "Amelia", "Oliver", "Sophia", "Elijah", "Mia", "Lucas",
    "Isabella", "Mateo", "Ava", "Levi", "Harper", "Ethan", "Evelyn", "James", "Luna", "Henry",
    "Aisha", "Omar", "Yuki", "Kenji", "Priya", "Arjun", "Chloe", "Hugo", "Ingrid", "Lars",
    "Fatima", "Diego", "Zoe", "Samuel", "Nora", "Felix", "Leila", "Tomas", "Hana", "Marco",
];

pub const LAST_NAMES: &[&str] = &[
    "Smith", "Johnson", "Garcia", "Miller", "Davis", "Martinez", "Lopez", "Wilson", "Anderson",
    "Thomas", "Moore", "Jackson", "Martin", "Lee", "Thompson", "White", "Harris", "Clark", "Lewis",
    "Walker", "Nakamura", "Tanaka", "Patel", "Sharma", "Kowalski", "Novak", "Berg", "Larsen",
    "Rossi", "Bianchi", "Dubois", "Moreau", "Schmidt", "Fischer", "Haddad", "Khan", "Silva",
    "Costa", "Murphy", "Kelly",
];

/// Companies the requesters work for (their e-mail domains).
pub const COMPANIES: &[&str] = &[
    "acme.example",
    "globex.example",
    "initech.example",
    "umbrella.example",
    "hooli.example",
    "vandelay.example",
    "wonka.example",
    "stark.example",
];

/// The demo's queues, each worked by a team of the same name, with how often a
/// new ticket lands there (weights).
pub const QUEUES: &[(&str, u32)] = &[
    ("technical", 40),
    ("billing", 25),
    ("accounts", 20),
    ("onboarding", 15),
];

/// Ticket subjects per queue; `{n}` is replaced by a number.
pub fn subjects(queue: &str) -> &'static [&'static str] {
    match queue {
        "billing" => &[
            "Charged twice for the monthly invoice",
            "Refund for order #{n}",
            "Invoice shows the wrong VAT number",
            "Cannot update the credit card on file",
            "Question about annual plan pricing",
            "Payment failed with a card that works elsewhere",
            "Need a copy of invoice INV-{n}",
            "Discount code {n} was not applied",
        ],
        "technical" => &[
            "App crashes when exporting to PDF",
            "Sync stuck at {n}%",
            "Error 500 when saving a report",
            "Login page loads forever on Safari",
            "API returns 429 far too often",
            "Webhook deliveries delayed by hours",
            "Mobile app shows no notifications",
            "CSV import rejects a valid file of {n} rows",
            "Dashboard charts are empty since this morning",
            "Search does not find documents uploaded today",
        ],
        "accounts" => &[
            "Cannot reset my password",
            "Please change the account owner",
            "Two-factor codes are not accepted",
            "Merge two accounts into one",
            "Delete my account and all my data",
            "Locked out after too many attempts",
            "Change the e-mail address of my account",
        ],
        _ => &[
            "Help setting up single sign-on",
            "Import our data from a spreadsheet",
            "Schedule a training session for {n} people",
            "How do I invite my team members?",
            "Which plan fits a team of {n}?",
            "Configure a custom domain",
        ],
    }
}

/// Tags an agent may add, per queue.
pub fn tags(queue: &str) -> &'static [&'static str] {
    match queue {
        "billing" => &["refund", "invoice", "payment", "vat"],
        "technical" => &["bug", "sync", "api", "mobile", "performance"],
        "accounts" => &["password", "2fa", "gdpr", "access"],
        _ => &["sso", "import", "training", "setup"],
    }
}

/// Tags any ticket may get.
pub const COMMON_TAGS: &[&str] = &["vip", "follow-up", "regression", "enterprise"];

pub const OPENINGS: &[&str] = &[
    "Hi team,",
    "Hello,",
    "Good morning,",
    "Hi there,",
    "Dear support,",
];

pub const DETAILS: &[&str] = &[
    "This started after yesterday's update.",
    "It happens every time, for everyone in our team.",
    "It only happens now and then, I could not find a pattern.",
    "We need this sorted out before the end of the month.",
    "I attached what I could find, let me know if you need more.",
    "Our finance department is asking about it.",
];

pub const AGENT_REPLIES: &[&str] = &[
    "Thanks for reaching out, I am looking into this now.",
    "Could you send us a screenshot of the error?",
    "I have reproduced the issue and passed it on to engineering.",
    "Which browser and version are you using?",
    "Thanks for the details, that helps a lot.",
    "I have checked your account and see what you mean.",
];

pub const REQUESTER_REPLIES: &[&str] = &[
    "Thanks! Here is the information you asked for.",
    "Any update on this?",
    "It happened again this morning.",
    "We are using the latest Chrome on Windows.",
    "That worked for some of us, not for all.",
    "Thank you for the quick answer.",
];

pub const INTERNAL_NOTES: &[&str] = &[
    "Customer is on the enterprise plan: keep them posted daily.",
    "Looks like a duplicate of the sync bug from last week.",
    "Checked the logs: timeouts at the payment provider around that time.",
    "Engineering is aware, fix planned for the next release.",
    "Second ticket from this customer this month.",
    "Needs approval from finance before we refund.",
];

pub const HOLD_REASONS: &[&str] = &[
    "Waiting for your reply.",
    "Waiting for a fix from engineering.",
    "Waiting for the payment provider.",
];

pub const RESOLUTIONS: &[&str] = &[
    "Fixed in today's release, please let us know if it happens again.",
    "The refund is on its way and will show within five business days.",
    "Done: the change is in place.",
    "Explained the setting; the customer confirmed it works now.",
    "Reset done, you can sign in again.",
];

pub const DELETE_REASONS: &[&str] = &["spam", "duplicate ticket", "opened by mistake"];
