// TC string test vectors from the IAB Tech Lab's reference library (@iabtechlabtcf/core).
//
//   cd tools/vectors && npm ci && node tcf.mjs
//
// Reads tests/privacy/vectors/gvl.json (a small vendor list we wrote; no network),
// encodes each case below with the library, decodes the result with the library
// and writes tests/privacy/vectors/tcf_vectors.json: each string with what the
// library decodes from it. tests/privacy/test_tcf_vectors.py checks our decoder
// against every field and our encoder against every vector; CI needs no Node.
//
// The output is deterministic (every date is fixed): re-running without changing
// a case or the library version gives the same file.
//
// The library applies TCF policy while encoding (its SemanticPreEncoder): it
// drops vendor consent or LI for vendors the GVL does not list, has deleted or
// that declare no purpose under that basis, drops purpose LI for purposes 1 and
// 3-6, and drops publisher restrictions a vendor's declarations do not allow.
// The vectors record what the library decodes, so they show those effects;
// each case's description says which one it exercises.

import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import {
  Base64Url,
  GVL,
  IntEncoder,
  PurposeRestriction,
  RestrictionType,
  Segment,
  SegmentIDs,
  TCModel,
  TCString,
} from '@iabtechlabtcf/core';

const HERE = dirname(fileURLToPath(import.meta.url));
const VECTORS_DIR = join(HERE, '..', '..', 'tests', 'privacy', 'vectors');
const GVL_FILE = 'gvl.json';
const OUTPUT_FILE = 'tcf_vectors.json';
const LIBRARY = '@iabtechlabtcf/core';
const LIBRARY_VERSION = JSON.parse(
  readFileSync(join(HERE, 'node_modules', '@iabtechlabtcf', 'core', 'package.json'), 'utf8'),
).version;
const GVL_BYTES = readFileSync(join(VECTORS_DIR, GVL_FILE));
const GVL_JSON = JSON.parse(GVL_BYTES.toString('utf8'));

const { NOT_ALLOWED, REQUIRE_CONSENT, REQUIRE_LI } = RestrictionType;
const CORE = Segment.CORE;
const DISCLOSED = Segment.VENDORS_DISCLOSED;
const ALLOWED = Segment.VENDORS_ALLOWED;
const PUBLISHER_TC = Segment.PUBLISHER_TC;

// Bit offset of the vendor consent section in the core segment (fixed fields before it).
const CORE_VENDOR_SECTION_OFFSET = 213;
// MaxVendorId comes before a section's IsRangeEncoding bit.
const MAX_VENDOR_ID_BITS = 16;
const SEGMENT_TYPE_BITS = 3;

const DEFAULT_CREATED = '2026-11-20T09:15:00.000Z';
const ALL_PURPOSES = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11];

// Each case: what to put in the TCModel. Anything left out keeps the library's default.
//   gvl: overrides of the vendor list (vendorListVersion, tcfPolicyVersion, language)
//   restrictions: [purposeId, restrictionType, vendorIds | 'all']
//   segments: explicit segment sequence; isForVendors: the library's own choice
const CASES = [
  {
    name: 'core-only-nothing-granted',
    description: 'Only the core segment, no purpose, vendor or feature set.',
    segments: [CORE],
  },
  {
    name: 'all-purposes-consented',
    description: 'Consent to purposes 1-11, no vendors.',
    purposeConsents: ALL_PURPOSES,
    segments: [CORE],
  },
  {
    name: 'purpose-li-without-1-and-3-to-6',
    description: 'LI asked for every purpose: the library drops 1 and 3-6 (never LI in TCF v2.2).',
    purposeLegitimateInterests: ALL_PURPOSES,
    segments: [CORE],
  },
  {
    name: 'vendor-consents-bitfield-small-ids',
    description: 'Consent for GVL vendors 1-12 with consent purposes: a bitfield section.',
    purposeConsents: [1, 7, 9],
    vendorConsents: [1, 2, 4, 5, 6, 8, 9, 11, 12],
    segments: [CORE],
  },
  {
    name: 'vendor-consents-range-high-ids',
    description: 'Sparse vendor ids up to 1203: the library picks range encoding.',
    purposeConsents: [1, 2, 7, 9, 10],
    vendorConsents: [1, 2, 755, 756, 793, 1200, 1203],
    segments: [CORE],
  },
  {
    name: 'vendor-consents-runs-of-ids',
    description: 'Runs of consecutive vendor ids; vendor 3 (special purposes only) is dropped.',
    purposeConsents: [1, 7],
    vendorConsents: [1, 2, 3, 4, 5, 6, 755, 756, 1200, 1203],
    segments: [CORE],
  },
  {
    name: 'vendor-li-bitfield',
    description: 'LI for purposes and for vendors declaring LI purposes, small ids.',
    purposeLegitimateInterests: [2, 7, 8, 9, 10, 11],
    vendorLegitimateInterests: [2, 4, 6, 9, 10, 12],
    segments: [CORE],
  },
  {
    name: 'vendor-li-range-high-ids',
    description: 'Vendor LI up to id 1200: a range section; consent for a few vendors.',
    purposeConsents: [1],
    purposeLegitimateInterests: [7, 8, 10],
    vendorConsents: [1, 2],
    vendorLegitimateInterests: [2, 23, 756, 793, 1200],
    segments: [CORE],
  },
  {
    name: 'li-only-vendor-consent-dropped',
    description: 'Vendor 10 declares no consent purpose: the library drops its consent bit.',
    purposeConsents: [7],
    purposeLegitimateInterests: [7, 8],
    vendorConsents: [10],
    vendorLegitimateInterests: [10],
    segments: [CORE],
  },
  {
    name: 'li-only-vendor-consent-kept-by-require-consent',
    description: 'Require consent for flexible purpose 7: LI-only vendor 10 keeps its consent.',
    purposeConsents: [7],
    vendorConsents: [10],
    restrictions: [[7, REQUIRE_CONSENT, [10]]],
    segments: [CORE],
  },
  {
    name: 'deleted-vendors-dropped',
    description: 'Vendors 7 and 1202 are deleted from the GVL: the library drops their bits.',
    purposeConsents: [1, 2, 7],
    vendorConsents: [1, 7, 1202, 1203],
    vendorLegitimateInterests: [7, 1202],
    segments: [CORE],
  },
  {
    name: 'unknown-vendors-dropped',
    description: 'Vendors 13, 500 and 2000 are not in the GVL: only vendor 1 keeps consent.',
    purposeConsents: [1],
    vendorConsents: [1, 13, 500, 2000],
    segments: [CORE],
  },
  {
    name: 'special-purpose-only-vendors-disclosed',
    description: 'Vendors 3, 21 and 1201 rely on special purposes only: disclosed, LI bit kept.',
    vendorLegitimateInterests: [3, 21, 1201],
    vendorsDisclosed: [3, 21, 1201],
    segments: [CORE, DISCLOSED],
  },
  {
    name: 'special-purpose-only-vendor-not-disclosed',
    description: 'Vendor 1201 (special purposes only) is not in the disclosed-vendors segment.',
    purposeConsents: [1, 7],
    vendorConsents: [1, 2],
    vendorsDisclosed: [1, 2, 3],
    segments: [CORE, DISCLOSED],
  },
  {
    name: 'special-features-opted-in',
    description: 'Opt-in to special features 1 (precise geolocation) and 2 (device scanning).',
    specialFeatureOptins: [1, 2],
    purposeConsents: [1, 2],
    vendorConsents: [5, 8, 755],
    segments: [CORE],
  },
  {
    name: 'special-feature-1-only',
    description: 'Opt-in to special feature 1 only.',
    specialFeatureOptins: [1],
    purposeConsents: [1, 2, 7],
    vendorConsents: [4, 5],
    segments: [CORE],
  },
  {
    name: 'purpose-one-treatment',
    description: 'PurposeOneTreatment set for a German publisher; no purpose 1 consent.',
    purposeOneTreatment: true,
    publisherCountryCode: 'DE',
    purposeConsents: [2, 3, 4, 7, 9, 10],
    vendorConsents: [1, 20],
    segments: [CORE],
  },
  {
    name: 'non-standard-texts',
    description: 'UseNonStandardTexts set.',
    useNonStandardTexts: true,
    purposeConsents: [1, 7],
    vendorConsents: [793],
    segments: [CORE],
  },
  {
    name: 'restriction-not-allowed',
    description: 'Publisher forbids purpose 7 for vendors 2, 4 and 793.',
    purposeConsents: [1, 7, 9],
    vendorConsents: [2, 4, 793],
    restrictions: [[7, NOT_ALLOWED, [2, 4, 793]]],
    segments: [CORE],
  },
  {
    name: 'restriction-require-consent',
    description: 'Purpose 8 is flexible LI for vendors 2, 9 and 793: publisher requires consent.',
    purposeConsents: [1, 8],
    vendorConsents: [2, 9, 793],
    restrictions: [[8, REQUIRE_CONSENT, [2, 9, 793]]],
    segments: [CORE],
  },
  {
    name: 'restriction-require-li-bridges-gvl-gaps',
    description:
      'Require LI for flexible purpose 7 (vendors 2, 793, 1200); the library writes 793-1200 as ' +
      'one range as the GVL has no vendor between them, so 793..1200 all decode as restricted.',
    purposeLegitimateInterests: [7],
    vendorLegitimateInterests: [2, 793, 1200],
    restrictions: [[7, REQUIRE_LI, [2, 793, 1200]]],
    segments: [CORE],
  },
  {
    name: 'restrictions-of-every-type',
    description: 'Not allowed for purpose 3, require consent for 2, require LI for 9.',
    purposeConsents: [1, 2, 3, 4, 9],
    purposeLegitimateInterests: [2, 9],
    vendorConsents: [1, 4, 8, 12, 20, 23, 755, 756, 793],
    vendorLegitimateInterests: [4, 12, 23, 756, 793],
    restrictions: [
      [3, NOT_ALLOWED, [1, 4, 8, 20, 755, 756]],
      [2, REQUIRE_CONSENT, [4, 23, 756]],
      [9, REQUIRE_LI, [12, 793]],
    ],
    segments: [CORE],
  },
  {
    name: 'restriction-dropped-when-purpose-not-flexible',
    description: 'Require LI for purpose 7 of vendor 11, not flexible: the library drops it.',
    purposeConsents: [7],
    vendorConsents: [11],
    restrictions: [[7, REQUIRE_LI, [11]]],
    segments: [CORE],
  },
  {
    name: 'restriction-for-all-vendors',
    description: 'Require consent for purpose 2 for every vendor id up to the highest in the GVL.',
    purposeConsents: [1, 2],
    vendorConsents: [1, 4, 23],
    restrictions: [[2, REQUIRE_CONSENT, 'all']],
    segments: [CORE],
  },
  {
    name: 'disclosed-vendors-bitfield',
    description: 'Disclosed-vendors segment with small ids: a bitfield.',
    purposeConsents: [1, 7],
    vendorConsents: [1, 2],
    vendorsDisclosed: [1, 2, 3, 4, 5, 6, 8, 9, 10, 11, 12],
    segments: [CORE, DISCLOSED],
  },
  {
    name: 'disclosed-vendors-range-high-ids',
    description: 'Every active GVL vendor disclosed, up to id 1203: a range.',
    purposeConsents: ALL_PURPOSES,
    vendorConsents: [1, 755, 1200],
    vendorsDisclosed: [
      1, 2, 3, 4, 5, 6, 8, 9, 10, 11, 12, 20, 21, 23, 755, 756, 793, 1200, 1201, 1203,
    ],
    segments: [CORE, DISCLOSED],
  },
  {
    name: 'disclosed-vendors-empty',
    description: 'A disclosed-vendors segment that lists no vendor.',
    purposeConsents: [1],
    segments: [CORE, DISCLOSED],
  },
  {
    name: 'publisher-tc-without-custom-purposes',
    description: "Publisher TC segment: the publisher's own purpose consents and LI.",
    purposeConsents: [1, 7],
    publisherConsents: [1, 2, 7],
    publisherLegitimateInterests: [8, 9],
    segments: [CORE, PUBLISHER_TC],
  },
  {
    name: 'publisher-tc-with-custom-purposes',
    description: 'Three custom purposes: consent for 1 and 3, LI for 2.',
    purposeConsents: [1],
    publisherConsents: [1],
    numCustomPurposes: 3,
    publisherCustomConsents: [1, 3],
    publisherCustomLegitimateInterests: [2],
    segments: [CORE, PUBLISHER_TC],
  },
  {
    name: 'publisher-tc-with-63-custom-purposes',
    description: 'The most custom purposes NumCustomPurposes (6 bits) can count.',
    publisherConsents: [1, 24],
    publisherLegitimateInterests: [2, 23],
    numCustomPurposes: 63,
    publisherCustomConsents: Array.from({ length: 32 }, (_, i) => 2 * i + 1),
    publisherCustomLegitimateInterests: [62, 63],
    segments: [CORE, PUBLISHER_TC],
  },
  {
    name: 'global-scope-out-of-band-for-vendors',
    description:
      'Globally scoped (IsServiceSpecific 0) with out-of-band support, as surfaced to vendors: ' +
      "the library's own segments (core, disclosed, allowed vendors, publisher TC).",
    isServiceSpecific: false,
    supportOOB: true,
    isForVendors: true,
    purposeConsents: [1, 7],
    vendorConsents: [1, 2, 755],
    vendorsDisclosed: [1, 2, 755, 1200],
    vendorsAllowed: [1, 2, 755],
    publisherConsents: [1],
  },
  {
    name: 'global-scope-for-storage',
    description: "Globally scoped, as stored: the library's segments (core, disclosed vendors).",
    isServiceSpecific: false,
    purposeConsents: [1, 2, 7],
    vendorConsents: [1, 20],
    vendorsDisclosed: [1, 20],
  },
  {
    name: 'global-scope-for-vendors-without-oob',
    description:
      "Globally scoped, for vendors, no out-of-band: the library's segments (core, publisher TC).",
    isServiceSpecific: false,
    isForVendors: true,
    purposeConsents: [1],
    vendorConsents: [1],
    publisherConsents: [1, 7],
  },
  {
    name: 'service-specific-default-segments',
    description:
      "Service-specific with the library's own segments (core, disclosed vendors, publisher TC).",
    purposeConsents: [1, 7, 8],
    vendorConsents: [793],
    vendorLegitimateInterests: [793],
    vendorsDisclosed: [793],
    publisherConsents: [1],
  },
  {
    name: 'segments-out-of-order',
    description: 'Publisher TC before disclosed vendors: optional segments may come in any order.',
    purposeConsents: [1],
    vendorConsents: [1],
    vendorsDisclosed: [1, 3],
    publisherConsents: [7],
    segments: [CORE, PUBLISHER_TC, DISCLOSED],
  },
  {
    name: 'allowed-vendors-service-specific',
    description: 'The legacy allowed-vendors segment next to every other segment.',
    purposeConsents: [1],
    vendorConsents: [1, 2],
    vendorsDisclosed: [1, 2, 3],
    vendorsAllowed: [1, 2, 3, 4, 5, 6],
    publisherLegitimateInterests: [2],
    segments: [CORE, DISCLOSED, ALLOWED, PUBLISHER_TC],
  },
  {
    name: 'tcf-v2-2-policy-version-4',
    description: 'A TCF v2.2 vendor list (TcfPolicyVersion 4, vendor list 90).',
    gvl: { tcfPolicyVersion: 4, vendorListVersion: 90 },
    purposeConsents: [1, 7],
    vendorConsents: [793],
    segments: [CORE],
  },
  {
    name: 'largest-header-values',
    description:
      'CmpId, CmpVersion, VendorListVersion (12 bits) and ConsentScreen (6 bits) at their maximum.',
    gvl: { vendorListVersion: 4095 },
    cmpId: 4095,
    cmpVersion: 4095,
    consentScreen: 63,
    purposeConsents: [1],
    segments: [CORE],
  },
  {
    name: 'consent-language-french',
    description: 'Consent language FR (from the GVL language), French publisher.',
    gvl: { language: 'fr' },
    publisherCountryCode: 'FR',
    purposeConsents: [1, 2],
    vendorConsents: [755],
    segments: [CORE],
  },
  {
    name: 'consent-language-brazilian-portuguese',
    description: 'Language PT-BR is written as its first two letters, PT.',
    gvl: { language: 'pt-br' },
    publisherCountryCode: 'BR',
    purposeConsents: [1],
    segments: [CORE],
  },
  {
    name: 'timestamps-with-tenths',
    description: 'Created and LastUpdated differ and carry tenths of a second.',
    created: '2025-12-31T23:59:59.900Z',
    lastUpdated: '2026-01-02T03:04:05.600Z',
    purposeConsents: [1],
    segments: [CORE],
  },
  {
    name: 'timestamps-rounded-to-tenths',
    description: 'Milliseconds round to the nearest tenth: .149 s to .1 s, .150 s to .2 s.',
    created: '2026-03-01T12:00:00.149Z',
    lastUpdated: '2026-03-01T12:00:00.150Z',
    segments: [CORE],
  },
  {
    name: 'everything-granted',
    description: "The library's setAll on our GVL, restrictions and every segment.",
    setAll: true,
    restrictions: [
      [1, NOT_ALLOWED, [20]],
      [8, REQUIRE_CONSENT, [2, 793, 1200]],
      [7, REQUIRE_LI, [2, 1200]],
    ],
    vendorsDisclosed: 'all',
    vendorsAllowed: 'all',
    publisherConsents: ALL_PURPOSES,
    publisherLegitimateInterests: [2, 7],
    numCustomPurposes: 2,
    publisherCustomConsents: [1, 2],
    segments: [CORE, DISCLOSED, ALLOWED, PUBLISHER_TC],
  },
  {
    name: 'measurement-partner',
    description: 'Like our demo traffic: purposes 1-10, a measurement vendor with consent and LI.',
    cmpId: 28,
    cmpVersion: 3,
    publisherCountryCode: 'GB',
    purposeConsents: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10],
    purposeLegitimateInterests: [2, 8, 9, 10],
    vendorConsents: [1, 2, 10, 20, 755, 793],
    vendorLegitimateInterests: [2, 10, 20, 793],
    vendorsDisclosed: [1, 2, 10, 20, 755, 793, 1201],
    segments: [CORE, DISCLOSED],
  },
];

function gvlFor(overrides = {}) {
  const { language, ...listFields } = overrides;
  // A copy per case: the GVL keeps (and re-maps) the object it is given.
  const json = { ...structuredClone(GVL_JSON), ...listFields };
  return new GVL(json, language ? { language } : undefined);
}

function modelFor(spec) {
  const model = new TCModel(gvlFor(spec.gvl));
  model.cmpId = spec.cmpId ?? 300;
  model.cmpVersion = spec.cmpVersion ?? 7;
  model.consentScreen = spec.consentScreen ?? 2;
  model.publisherCountryCode = spec.publisherCountryCode ?? 'AA';
  model.isServiceSpecific = spec.isServiceSpecific ?? true;
  model.useNonStandardTexts = spec.useNonStandardTexts ?? false;
  model.purposeOneTreatment = spec.purposeOneTreatment ?? false;
  model.supportOOB = spec.supportOOB ?? false;
  model.created = new Date(spec.created ?? DEFAULT_CREATED);
  model.lastUpdated = new Date(spec.lastUpdated ?? spec.created ?? DEFAULT_CREATED);
  if (spec.setAll) {
    model.setAll();
  }
  for (const field of [
    'specialFeatureOptins',
    'purposeConsents',
    'purposeLegitimateInterests',
    'vendorConsents',
    'vendorLegitimateInterests',
    'publisherConsents',
    'publisherLegitimateInterests',
    'publisherCustomConsents',
    'publisherCustomLegitimateInterests',
  ]) {
    model[field].set(spec[field] ?? []);
  }
  if (spec.vendorsDisclosed === 'all') {
    model.setAllVendorsDisclosed();
  } else {
    model.vendorsDisclosed.set(spec.vendorsDisclosed ?? []);
  }
  if (spec.vendorsAllowed === 'all') {
    model.setAllVendorsAllowed();
  } else {
    model.vendorsAllowed.set(spec.vendorsAllowed ?? []);
  }
  model.numCustomPurposes = spec.numCustomPurposes ?? 0;
  for (const [purposeId, restrictionType, vendorIds] of spec.restrictions ?? []) {
    const restriction = new PurposeRestriction(purposeId, restrictionType);
    if (vendorIds === 'all') {
      model.publisherRestrictions.restrictPurposeToLegalBasis(restriction);
    } else {
      for (const vendorId of vendorIds) {
        model.publisherRestrictions.add(vendorId, restriction);
      }
    }
  }
  return model;
}

function encode(spec) {
  const options = {};
  if (spec.segments) {
    options.segments = spec.segments;
  }
  if (spec.isForVendors) {
    options.isForVendors = true;
  }
  return TCString.encode(modelFor(spec), options);
}

const ids = (vector) => Array.from(vector.values()).sort((a, b) => a - b);

function segmentOf(encodedSegment) {
  // As the library's decoder does: the first 3 bits name the segment (0 is the core).
  const bits = Base64Url.decode(encodedSegment.charAt(0)).substr(0, SEGMENT_TYPE_BITS);
  return SegmentIDs.ID_TO_KEY[IntEncoder.decode(bits, SEGMENT_TYPE_BITS)];
}

function encodingAt(encodedSegment, offset) {
  const bit = Base64Url.decode(encodedSegment).charAt(offset + MAX_VENDOR_ID_BITS);
  return bit === '1' ? 'range' : 'bitfield';
}

// Which encoding the library chose for each vendor section: metadata for the
// tests' bit-for-bit comparison with our encoder, read from the string itself.
function encodingsOf(tcString, decoded) {
  const encodings = {};
  for (const encodedSegment of tcString.split('.')) {
    const segment = segmentOf(encodedSegment);
    if (segment === CORE) {
      encodings.vendorConsents = encodingAt(encodedSegment, CORE_VENDOR_SECTION_OFFSET);
      const liOffset = CORE_VENDOR_SECTION_OFFSET + decoded.vendorConsents.bitLength;
      encodings.vendorLegitimateInterests = encodingAt(encodedSegment, liOffset);
    } else if (segment === DISCLOSED || segment === ALLOWED) {
      encodings[segment] = encodingAt(encodedSegment, SEGMENT_TYPE_BITS);
    }
  }
  return encodings;
}

function describe(tcString) {
  const decoded = TCString.decode(tcString);
  const segments = tcString.split('.').map(segmentOf);
  const restrictions = decoded.publisherRestrictions.getRestrictions().map((restriction) => ({
    purposeId: restriction.purposeId,
    restrictionType: restriction.restrictionType,
    vendorIds: decoded.publisherRestrictions.getVendors(restriction),
  }));
  return {
    segments,
    encodings: encodingsOf(tcString, decoded),
    decoded: {
      version: decoded.version,
      created: decoded.created.toISOString(),
      lastUpdated: decoded.lastUpdated.toISOString(),
      cmpId: decoded.cmpId,
      cmpVersion: decoded.cmpVersion,
      consentScreen: decoded.consentScreen,
      consentLanguage: decoded.consentLanguage,
      vendorListVersion: decoded.vendorListVersion,
      policyVersion: decoded.policyVersion,
      isServiceSpecific: decoded.isServiceSpecific,
      useNonStandardTexts: decoded.useNonStandardTexts,
      specialFeatureOptins: ids(decoded.specialFeatureOptins),
      purposeConsents: ids(decoded.purposeConsents),
      purposeLegitimateInterests: ids(decoded.purposeLegitimateInterests),
      purposeOneTreatment: decoded.purposeOneTreatment,
      publisherCountryCode: decoded.publisherCountryCode,
      vendorConsents: ids(decoded.vendorConsents),
      vendorLegitimateInterests: ids(decoded.vendorLegitimateInterests),
      publisherRestrictions: restrictions,
      vendorsDisclosed: ids(decoded.vendorsDisclosed),
      vendorsAllowed: ids(decoded.vendorsAllowed),
      publisherConsents: ids(decoded.publisherConsents),
      publisherLegitimateInterests: ids(decoded.publisherLegitimateInterests),
      numCustomPurposes: decoded.numCustomPurposes,
      publisherCustomConsents: ids(decoded.publisherCustomConsents),
      publisherCustomLegitimateInterests: ids(decoded.publisherCustomLegitimateInterests),
    },
  };
}

// The cases must keep covering what the Python tests rely on; fail loudly if an
// edit (or a library upgrade) loses one.
function checkCoverage(vectors) {
  const all = (predicate) => vectors.some(predicate);
  const restrictionTypes = new Set(
    vectors.flatMap((v) => v.decoded.publisherRestrictions.map((r) => r.restrictionType)),
  );
  const required = {
    'every restriction type': restrictionTypes.size === 3,
    'bitfield vendor consents': all((v) => v.encodings.vendorConsents === 'bitfield'),
    'range vendor consents': all((v) => v.encodings.vendorConsents === 'range'),
    'bitfield vendor LI': all((v) => v.encodings.vendorLegitimateInterests === 'bitfield'),
    'range vendor LI': all((v) => v.encodings.vendorLegitimateInterests === 'range'),
    'bitfield disclosed vendors': all((v) => v.encodings[DISCLOSED] === 'bitfield'),
    'range disclosed vendors': all((v) => v.encodings[DISCLOSED] === 'range'),
    'allowed vendors': all((v) => v.segments.includes(ALLOWED)),
    'custom purposes': all((v) => v.decoded.numCustomPurposes > 0),
    'not service-specific': all((v) => !v.decoded.isServiceSpecific),
    'vendor id 1200 or above': all((v) => v.decoded.vendorConsents.some((id) => id >= 1200)),
  };
  const missing = Object.entries(required).filter(([, ok]) => !ok).map(([what]) => what);
  if (missing.length) {
    throw new Error(`the vectors no longer cover: ${missing.join(', ')}`);
  }
}

// Two-space JSON, with lists of numbers or of plain words on one line.
function toJson(value) {
  return JSON.stringify(value, null, 2).replace(/\[\s+((?:[\w"]+,\s+)*[\w"]+)\s+\]/g, (_, items) =>
    `[${items.split(',').map((item) => item.trim()).join(', ')}]`,
  );
}

function main() {
  const names = new Set();
  const vectors = CASES.map((spec) => {
    if (names.has(spec.name)) {
      throw new Error(`two cases are named ${spec.name}`);
    }
    names.add(spec.name);
    const tcString = encode(spec);
    return { name: spec.name, description: spec.description, tcString, ...describe(tcString) };
  });
  checkCoverage(vectors);
  const output = {
    about:
      'TC strings encoded and decoded by the IAB Tech Lab reference library. Generated by ' +
      'tools/vectors/tcf.mjs from gvl.json; do not edit by hand.',
    library: LIBRARY,
    libraryVersion: LIBRARY_VERSION,
    gvl: GVL_FILE,
    // The tests refuse vectors built from another version of gvl.json.
    gvlSha256: createHash('sha256').update(GVL_BYTES).digest('hex'),
    vectors,
  };
  writeFileSync(join(VECTORS_DIR, OUTPUT_FILE), `${toJson(output)}\n`);
  console.log(`wrote ${vectors.length} vectors to tests/privacy/vectors/${OUTPUT_FILE}`);
}

main();
