// Writes tests/privacy/vectors/gpp_vectors.json: GPP strings encoded by the IAB's own
// library (@iabgpp/cmpapi, pinned in package.json) and the field values that the same
// library decodes from them. Our Python decoder is checked against every vector, so
// where the two disagree the library is the ground truth.
//
// Offline and deterministic: only GppModel is used (no CMP API, no vendor list), and every
// date is fixed. Re-run with:  cd tools/vectors-gpp && npm ci && node gpp.mjs

import { readFileSync, writeFileSync, mkdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { GppModel } from "@iabgpp/cmpapi";

const HERE = dirname(fileURLToPath(import.meta.url));
const OUTPUT = join(HERE, "..", "..", "tests", "privacy", "vectors", "gpp_vectors.json");
const LIBRARY = JSON.parse(
  readFileSync(join(HERE, "node_modules", "@iabgpp", "cmpapi", "package.json"), "utf8"),
);

const FIXED_DATE = new Date(Date.UTC(2024, 4, 17, 9, 30, 0));

// --- Field helpers -------------------------------------------------------------------------

const list = (length, fill = 0) => Array(length).fill(fill);
// A repeating 0, 1, 2 pattern, shifted so different vectors put different values in each slot.
const cycle = (length, shift = 0) => Array.from({ length }, (_, i) => (i + shift) % 3);

// Every two-bit field of a US section set to one value; Version and the MSPA fields
// keep their own rules (MspaCoveredTransaction is 1 or 2 only).
function allNotices(fields, value) {
  return Object.fromEntries(fields.map((name) => [name, value]));
}

const TCF_CONSENT = {
  Created: FIXED_DATE,
  LastUpdated: FIXED_DATE,
  CmpId: 300,
  CmpVersion: 7,
  ConsentScreen: 2,
  ConsentLanguage: "FR",
  VendorListVersion: 150,
  PolicyVersion: 4,
  PurposeConsents: [true, true, false, false, false, false, true, false, false, true],
  PurposeLegitimateInterests: [false, true, false, false, false, false, true],
  VendorConsents: [1, 2, 3, 755, 1000],
  VendorLegitimateInterests: [755],
  PublisherCountryCode: "DE",
};

const TCF_NO_CONSENT = {
  Created: FIXED_DATE,
  LastUpdated: FIXED_DATE,
  CmpId: 12,
  CmpVersion: 1,
  VendorListVersion: 42,
  PolicyVersion: 4,
};

// --- The cases -----------------------------------------------------------------------------

// Each case: a description and, per section name, the fields to set on a fresh GppModel.
const CASES = [];
const add = (description, sections) => CASES.push({ description, sections });

// uspv1 and tcfeuv2 alone and together.
add("uspv1 notice given, not opted out", { uspv1: { Notice: "Y", OptOutSale: "N", LspaCovered: "N" } });
add("uspv1 CCPA does not apply", { uspv1: { Notice: "-", OptOutSale: "-", LspaCovered: "-" } });
add("uspv1 opted out of sale, LSPA covered", { uspv1: { Notice: "Y", OptOutSale: "Y", LspaCovered: "Y" } });
add("tcfeuv2 with purpose and vendor consents", { tcfeuv2: TCF_CONSENT });
add("tcfeuv2 without consents", { tcfeuv2: TCF_NO_CONSENT });
add("tcfeuv2 and uspv1", {
  tcfeuv2: TCF_CONSENT,
  uspv1: { Notice: "Y", OptOutSale: "Y", LspaCovered: "N" },
});

// usnat version 2 (the library's default version).
const USNAT_NOTICES = [
  "SharingNotice",
  "SaleOptOutNotice",
  "SharingOptOutNotice",
  "TargetedAdvertisingOptOutNotice",
  "SensitiveDataProcessingOptOutNotice",
  "SensitiveDataLimitUseNotice",
];
add("usnat v2 defaults, with GPC sub-section", { usnat: {} });
add("usnat v2 defaults, without GPC sub-section", { usnat: { GpcSegmentIncluded: false } });
add("usnat v2 notices given, nothing opted out, GPC false", {
  usnat: {
    ...allNotices(USNAT_NOTICES, 1),
    SaleOptOut: 2,
    SharingOptOut: 2,
    TargetedAdvertisingOptOut: 2,
    MspaCoveredTransaction: 1,
    MspaOptOutOptionMode: 1,
    MspaServiceProviderMode: 2,
    Gpc: false,
  },
});
add("usnat v2 every opt-out set, GPC true", {
  usnat: {
    ...allNotices(USNAT_NOTICES, 1),
    SaleOptOut: 1,
    SharingOptOut: 1,
    TargetedAdvertisingOptOut: 1,
    Gpc: true,
  },
});
add("usnat v2 notices not given, no GPC sub-section", {
  usnat: { ...allNotices(USNAT_NOTICES, 2), MspaCoveredTransaction: 2, GpcSegmentIncluded: false },
});
add("usnat v2 sensitive categories and child consents mixed", {
  usnat: {
    ...allNotices(USNAT_NOTICES, 1),
    SensitiveDataProcessing: cycle(16),
    KnownChildSensitiveDataConsents: [1, 2, 0],
    PersonalDataConsents: 1,
  },
});
add("usnat v2 sensitive categories shifted, personal data consent", {
  usnat: {
    SensitiveDataProcessing: cycle(16, 2),
    KnownChildSensitiveDataConsents: [0, 0, 2],
    PersonalDataConsents: 2,
    GpcSegmentIncluded: false,
  },
});
add("usnat v2 last sensitive category only", {
  usnat: { SensitiveDataProcessing: [...list(15), 1], SensitiveDataProcessingOptOutNotice: 1 },
});
add("usnat v2 service provider mode", {
  usnat: { MspaCoveredTransaction: 1, MspaOptOutOptionMode: 2, MspaServiceProviderMode: 1 },
});

// usnat version 1: 12 sensitive categories and 2 child consents.
add("usnat v1 defaults, with GPC sub-section", { usnat: { Version: 1 } });
add("usnat v1 opt-outs and GPC true", {
  usnat: {
    Version: 1,
    ...allNotices(USNAT_NOTICES, 1),
    SaleOptOut: 1,
    SharingOptOut: 2,
    TargetedAdvertisingOptOut: 1,
    MspaCoveredTransaction: 2,
    Gpc: true,
  },
});
add("usnat v1 sensitive categories and child consents, no GPC sub-section", {
  usnat: {
    Version: 1,
    SensitiveDataProcessing: [...cycle(12, 1), 0, 0, 0, 0],
    KnownChildSensitiveDataConsents: [2, 1, 0],
    PersonalDataConsents: 1,
    MspaServiceProviderMode: 1,
    GpcSegmentIncluded: false,
  },
});

// The five original state sections.
add("usca defaults, without GPC sub-section", { usca: { GpcSegmentIncluded: false } });
add("usca notices given, opted out of sale and sharing, GPC true", {
  usca: {
    SaleOptOutNotice: 1,
    SharingOptOutNotice: 1,
    SensitiveDataLimitUseNotice: 1,
    SaleOptOut: 1,
    SharingOptOut: 1,
    Gpc: true,
  },
});
add("usca sensitive categories and child consents, GPC false", {
  usca: {
    SensitiveDataLimitUseNotice: 1,
    SensitiveDataProcessing: cycle(9, 1),
    KnownChildSensitiveDataConsents: [2, 1],
    PersonalDataConsents: 2,
    MspaCoveredTransaction: 2,
    Gpc: false,
  },
});
add("usva defaults", { usva: {} });
add("usva opted out of targeted advertising, sensitive consents", {
  usva: {
    SharingNotice: 1,
    SaleOptOutNotice: 1,
    TargetedAdvertisingOptOutNotice: 1,
    SaleOptOut: 2,
    TargetedAdvertisingOptOut: 1,
    SensitiveDataProcessing: cycle(8, 2),
    KnownChildSensitiveDataConsents: 1,
    MspaServiceProviderMode: 1,
  },
});
add("usco defaults, without GPC sub-section", { usco: { GpcSegmentIncluded: false } });
add("usco opted out of sale, GPC true", {
  usco: {
    SharingNotice: 1,
    SaleOptOutNotice: 1,
    TargetedAdvertisingOptOutNotice: 2,
    SaleOptOut: 1,
    TargetedAdvertisingOptOut: 2,
    SensitiveDataProcessing: cycle(7),
    KnownChildSensitiveDataConsents: 2,
    Gpc: true,
  },
});
add("usut defaults", { usut: {} });
add("usut sensitive opt-out notice and categories", {
  usut: {
    SharingNotice: 1,
    SaleOptOutNotice: 1,
    TargetedAdvertisingOptOutNotice: 1,
    SensitiveDataProcessingOptOutNotice: 1,
    SaleOptOut: 2,
    TargetedAdvertisingOptOut: 2,
    SensitiveDataProcessing: cycle(8, 1),
    KnownChildSensitiveDataConsents: 2,
    MspaOptOutOptionMode: 1,
  },
});
add("usct defaults, without GPC sub-section", { usct: { GpcSegmentIncluded: false } });
add("usct child consents, GPC true", {
  usct: {
    SharingNotice: 1,
    SaleOptOutNotice: 1,
    TargetedAdvertisingOptOutNotice: 1,
    SaleOptOut: 2,
    TargetedAdvertisingOptOut: 1,
    SensitiveDataProcessing: cycle(8, 2),
    KnownChildSensitiveDataConsents: [0, 2, 2],
    Gpc: true,
  },
});
add("usct sensitive categories, GPC false", {
  usct: { SensitiveDataProcessing: cycle(8), KnownChildSensitiveDataConsents: [1, 0, 1], Gpc: false },
});

// Several sections in one string: ranges and gaps in the header's section ids.
add("tcfeuv2 and usnat", { tcfeuv2: TCF_CONSENT, usnat: { SaleOptOutNotice: 1, SaleOptOut: 2 } });
add("uspv1 and usnat", {
  uspv1: { Notice: "Y", OptOutSale: "N", LspaCovered: "Y" },
  usnat: { SaleOptOutNotice: 1, SaleOptOut: 1, GpcSegmentIncluded: false },
});
add("tcfeuv2, uspv1 and usnat v1", {
  tcfeuv2: TCF_NO_CONSENT,
  uspv1: { Notice: "N", OptOutSale: "Y", LspaCovered: "N" },
  usnat: { Version: 1, SharingNotice: 2 },
});
add("every original state section", {
  usca: { SaleOptOut: 1 },
  usva: { TargetedAdvertisingOptOut: 1 },
  usco: { Gpc: true },
  usut: { SensitiveDataProcessing: [1] },
  usct: { KnownChildSensitiveDataConsents: [1, 1, 1] },
});
add("usnat and two states", {
  usnat: { SaleOptOut: 2, SaleOptOutNotice: 1 },
  usca: { SharingOptOut: 1, GpcSegmentIncluded: false },
  usva: { SaleOptOut: 1 },
});
add("tcfeuv2 and usct (a gap in the ids)", { tcfeuv2: TCF_CONSENT, usct: {} });

// Later state sections (ids 13 to 23), decoded as a bonus. usmd (24), usin (25), usky (26)
// and usri (27) use a different layout (MspaVersion, MspaMode) and stay opaque for now.
const LATER_STATES = {
  usfl: { gpc: false, sensitive: 8, children: 3 },
  usmt: { gpc: true, sensitive: 8, children: 3 },
  usor: { gpc: true, sensitive: 11, children: 3 },
  ustx: { gpc: true, sensitive: 8, children: 1 },
  usde: { gpc: true, sensitive: 9, children: 5 },
  usia: { gpc: true, sensitive: 8, children: 1 },
  usne: { gpc: true, sensitive: 8, children: 1 },
  usnh: { gpc: true, sensitive: 8, children: 3 },
  usnj: { gpc: true, sensitive: 10, children: 5 },
  ustn: { gpc: true, sensitive: 8, children: 1 },
  usmn: { gpc: true, sensitive: 8, children: 1 },
};
for (const [name, shape] of Object.entries(LATER_STATES)) {
  const hasSharingNotice = name === "usmt";
  const hasSensitiveNotice = name === "usia";
  const fields = {
    [hasSharingNotice ? "SharingNotice" : "ProcessingNotice"]: 1,
    SaleOptOutNotice: 1,
    TargetedAdvertisingOptOutNotice: 1,
    SaleOptOut: 2,
    TargetedAdvertisingOptOut: 1,
  };
  if (hasSensitiveNotice) fields.SensitiveDataOptOutNotice = 1;
  if (shape.sensitive) fields.SensitiveDataProcessing = cycle(shape.sensitive, 1);
  if (shape.children === 1) fields.KnownChildSensitiveDataConsents = 1;
  if (shape.children > 1) fields.KnownChildSensitiveDataConsents = cycle(shape.children, 2);
  // Iowa is the one later state without an AdditionalDataProcessingConsent field.
  if (name !== "usia") fields.AdditionalDataProcessingConsent = 1;
  if (shape.gpc) {
    add(`${name} with values, GPC true`, { [name]: { ...fields, Gpc: true } });
    add(`${name} defaults, without GPC sub-section`, { [name]: { GpcSegmentIncluded: false } });
  } else {
    add(`${name} with values`, { [name]: fields });
    add(`${name} defaults`, { [name]: {} });
  }
}

// Sections we keep undecoded: the caller sees them as opaque and fails closed if it needs them.
add("tcfcav1 (kept opaque) and usnat", {
  tcfcav1: { Created: FIXED_DATE, LastUpdated: FIXED_DATE, CmpId: 5 },
  usnat: {},
});
add("usnat and usri (kept opaque), a wide gap in the ids", { usnat: {}, usri: {} });

// --- Encoding and decoding -----------------------------------------------------------------

// The version each section starts with; setting it adds a section that a case leaves at its
// defaults.
const DEFAULT_VERSION = { tcfeuv2: 2, usnat: 2 };
// Sections of the newer layout name their version field MspaVersion.
const VERSION_FIELD = { usmd: "MspaVersion", usin: "MspaVersion", usky: "MspaVersion", usri: "MspaVersion" };

function encode(sections) {
  const model = new GppModel();
  for (const [section, fields] of Object.entries(sections)) {
    model.setFieldValue(section, VERSION_FIELD[section] ?? "Version", DEFAULT_VERSION[section] ?? 1);
    // The TCF sections stamp Created and LastUpdated with today's date whenever another
    // field changes, so the fixed dates go last.
    const entries = Object.entries(fields);
    const isDate = ([field]) => field === "Created" || field === "LastUpdated";
    for (const [field, value] of [...entries.filter((e) => !isDate(e)), ...entries.filter(isDate)]) {
      model.setFieldValue(section, field, value);
    }
  }
  return model.encode();
}

// toObject() lists the GPC sub-section's fields whether or not the string has one; record
// whether it does, which is what our decoder reports as gpc = None.
function decodedSections(model) {
  const sections = plain(model.toObject());
  for (const [name, fields] of Object.entries(sections)) {
    if ("Gpc" in fields) {
      fields.GpcSegmentIncluded = model.getFieldValue(name, "GpcSegmentIncluded");
    }
  }
  return sections;
}

function plain(value) {
  if (value instanceof Date) return value.toISOString();
  if (Array.isArray(value)) return value.map(plain);
  if (value && typeof value === "object") {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, plain(v)]));
  }
  return value;
}

const vectors = CASES.map(({ description, sections }) => {
  const gpp = encode(sections);
  // Decode with a fresh model: the values below are what the library reads from the string.
  const decoded = new GppModel(gpp);
  return {
    description,
    gpp,
    section_ids: decoded.getSectionIds(),
    raw_sections: gpp.split("~").slice(1),
    sections: decodedSections(decoded),
  };
});

mkdirSync(dirname(OUTPUT), { recursive: true });
const document = {
  generator: "tools/vectors-gpp/gpp.mjs",
  library: `${LIBRARY.name} ${LIBRARY.version}`,
  vectors,
};
writeFileSync(OUTPUT, JSON.stringify(document, null, 2) + "\n");
console.log(`wrote ${vectors.length} vectors to ${OUTPUT}`);
