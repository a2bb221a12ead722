// Money on every surface: the wire carries integer minor units and an ISO 4217 code; people read
// "¥199.00" and type major units ("199.00"). No floating point between text and minor units: the
// text is split on the decimal point and scaled by the currency's fraction digits.

const digitsCache = new Map();

/** Fraction digits of a currency as Intl knows them (CNY 2, JPY 0, KWD 3); null for a code that is
 * not three letters (Intl takes any well-formed code, with 2 digits: the server says whether it is a
 * real currency). */
export function fractionDigits(currency) {
  const code = String(currency || "").toUpperCase();
  if (!digitsCache.has(code)) {
    let digits = null;
    if (/^[A-Z]{3}$/.test(code)) {
      try {
        digits = new Intl.NumberFormat("en", { style: "currency", currency: code }).resolvedOptions()
          .maximumFractionDigits;
      } catch {
        digits = null;
      }
    }
    digitsCache.set(code, digits);
  }
  return digitsCache.get(code);
}

/**
 * ``19900`` CNY -> "¥199.00" in the page's language (or ``lang``). ``digits``: the currency's
 * fraction digits as the server counts them (products, deals and claims carry them); without it, as
 * Intl knows them.
 */
export function formatMoney(minor, currency, { digits, lang } = {}) {
  const n = Number.isInteger(digits) ? digits : fractionDigits(currency) ?? 2;
  try {
    const options = { style: "currency", currency, minimumFractionDigits: n, maximumFractionDigits: n };
    return new Intl.NumberFormat(lang || document.documentElement.lang || "en", options).format(minor / 10 ** n);
  } catch {
    return `${toMajor(minor, currency, n)} ${currency}`;
  }
}

/** ``19900`` CNY -> "199.00": what an edit form shows (no grouping, a dot, exact). */
export function toMajor(minor, currency, digits = fractionDigits(currency) ?? 2) {
  const sign = minor < 0 ? "-" : "";
  const text = String(Math.abs(minor)).padStart(digits + 1, "0");
  if (!digits) return sign + text;
  return `${sign}${text.slice(0, -digits)}.${text.slice(-digits)}`;
}

/**
 * "199", "199.5", "199.00", "１９９．００" -> minor units; ``null`` for anything that is not a plain
 * non-negative amount or has more decimals than the currency allows (never rounds silently).
 */
export function parseMajor(text, currency) {
  const digits = fractionDigits(currency);
  if (digits === null) return null;
  const clean = String(text).normalize("NFKC").replace(/[\s_]/g, "");
  const match = /^(\d+)(?:\.(\d*))?$/.exec(clean);
  if (!match) return null;
  const decimals = (match[2] || "").replace(/0+$/, "");
  if (decimals.length > digits) return null;
  const minor = BigInt(match[1] + decimals.padEnd(digits, "0"));
  return minor > BigInt(Number.MAX_SAFE_INTEGER) ? null : Number(minor);
}
