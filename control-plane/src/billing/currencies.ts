// ISO 4217 currencies in circulation (funds codes included; precious metals, special drawing rights
// and test codes left out) with their minor-unit exponent: how many fraction digits an amount has.
import { InvalidArgumentError } from '../errors.js';

const EXPONENT_0 = 'BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX UYI VND VUV XAF XOF XPF'.split(' ');
const EXPONENT_3 = 'BHD IQD JOD KWD LYD OMR TND'.split(' ');
const EXPONENT_4 = 'CLF UYW'.split(' ');
const EXPONENT_2 = (
  'AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BMD BND BOB BOV BRL BSD BTN BWP BYN ' +
  'BZD CAD CDF CHE CHF CHW CNY COP COU CRC CUP CVE CZK DKK DOP DZD EGP ERN ETB EUR FJD FKP GBP ' +
  'GEL GHS GIP GMD GTQ GYD HKD HNL HTG HUF IDR ILS INR IRR JMD KES KGS KHR KPW KYD KZT LAK LBP ' +
  'LKR LRD LSL MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MXV MYR MZN NAD NGN NIO NOK NPR ' +
  'NZD PAB PEN PGK PHP PKR PLN QAR RON RSD RUB SAR SBD SCR SDG SEK SGD SHP SLE SLL SOS SRD SSP ' +
  'STN SVC SYP SZL THB TJS TMT TOP TRY TTD TWD TZS UAH USD USN UYU UZS VED VES WST XCD XCG YER ' +
  'ZAR ZMW ZWG ZWL'
).split(' ');

const EXPONENTS: ReadonlyMap<string, number> = new Map([
  ...EXPONENT_0.map((c) => [c, 0] as const),
  ...EXPONENT_2.map((c) => [c, 2] as const),
  ...EXPONENT_3.map((c) => [c, 3] as const),
  ...EXPONENT_4.map((c) => [c, 4] as const),
]);

/** The currency's minor-unit exponent (2 for USD: cents), or throws INVALID_ARGUMENT naming it. */
export function currencyExponent(code: string, field = 'currency'): number {
  const exponent = EXPONENTS.get(code);
  if (exponent === undefined) {
    throw new InvalidArgumentError(field, code, 'is not an ISO 4217 currency code (upper case, e.g. "USD")');
  }
  return exponent;
}
