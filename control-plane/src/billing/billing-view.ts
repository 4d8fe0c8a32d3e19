// Billing rows as the API shows them.
import { create } from '@bufbuild/protobuf';
import {
  BillingDimension,
  ChargeKind,
  type ChargeLine,
  ChargeLineSchema,
  CustomerChargeSchema,
  type PriceBook,
  PriceBookKind,
  PriceBookSchema,
  type Rating,
  RatingSchema,
  type Statement,
  StatementSchema,
} from '@cphone/proto';
import { ts } from '../api/convert.js';
import type { StoredCustomer, StoredLine } from '../store/schema.js';
import { type PriceBookRow, pricesOf } from './price-books.js';
import type { Dimension } from './rating.js';
import type { StatementRow } from './statements.js';

export const DIMENSION_TO_PROTO: Readonly<Record<Dimension, BillingDimension>> = {
  device_minutes: BillingDimension.DEVICE_MINUTES,
  stopped_device_minutes: BillingDimension.STOPPED_DEVICE_MINUTES,
  vcpu_minutes: BillingDimension.VCPU_MINUTES,
  memory_gib_minutes: BillingDimension.MEMORY_GIB_MINUTES,
  storage_gib_minutes: BillingDimension.STORAGE_GIB_MINUTES,
};

export function dimensionFromProto(value: BillingDimension): Dimension | undefined {
  return (Object.entries(DIMENSION_TO_PROTO) as [Dimension, BillingDimension][]).find(
    ([, v]) => v === value,
  )?.[0];
}

const KIND_TO_PROTO: Readonly<Record<string, ChargeKind>> = {
  usage: ChargeKind.USAGE,
  included: ChargeKind.INCLUDED,
  minimum: ChargeKind.MINIMUM,
};

export function priceBookToProto(row: PriceBookRow, tenantKind: string): PriceBook {
  return create(PriceBookSchema, {
    priceBookId: row.id,
    tenantId: row.tenant_id,
    kind: tenantKind === 'reseller' ? PriceBookKind.WHOLESALE : PriceBookKind.RETAIL,
    currency: row.currency,
    effectiveFrom: ts(row.effective_from),
    prices: pricesOf(row.prices).map((p) => ({
      dimension: DIMENSION_TO_PROTO[p.dimension],
      deviceClass: p.deviceClass,
      includedQuantity: p.includedQuantity,
      tiers: p.tiers.map((t) => ({ upTo: t.upTo, unitPrice: t.unitPrice })),
    })),
    minimumCharge: row.minimum_charge,
    displayName: row.display_name,
    createTime: ts(row.create_time),
    creator: row.creator,
  });
}

export function lineToProto(line: StoredLine): ChargeLine {
  return create(ChargeLineSchema, {
    kind: KIND_TO_PROTO[line.kind] ?? ChargeKind.UNSPECIFIED,
    description: line.description,
    dimension: line.dimension
      ? DIMENSION_TO_PROTO[line.dimension as Dimension]
      : BillingDimension.UNSPECIFIED,
    deviceClass: line.device_class,
    priceBookId: line.price_book_id,
    startTime: ts(new Date(line.start_time)),
    endTime: ts(new Date(line.end_time)),
    tier: line.tier,
    quantity: line.quantity,
    unitPrice: line.unit_price,
    amount: line.amount,
  });
}

/** A rating or a statement's content, as stored. */
export interface RatingDoc {
  tenantId: string;
  currency: string;
  start: Date;
  end: Date;
  lines: readonly StoredLine[];
  total: string;
  customers: readonly StoredCustomer[];
  customersTotal: string;
  margin: string;
}

export function ratingToProto(doc: RatingDoc): Rating {
  return create(RatingSchema, {
    tenantId: doc.tenantId,
    currency: doc.currency,
    startTime: ts(doc.start),
    endTime: ts(doc.end),
    lines: doc.lines.map(lineToProto),
    total: doc.total,
    customers: doc.customers.map((c) =>
      create(CustomerChargeSchema, {
        tenantId: c.tenant_id,
        priced: c.priced,
        total: c.total,
        statementId: c.statement_id,
      }),
    ),
    customersTotal: doc.customersTotal,
    margin: doc.margin,
  });
}

export function statementDoc(row: StatementRow): RatingDoc {
  const start = new Date(`${row.month}-01T00:00:00Z`);
  return {
    tenantId: row.tenant_id,
    currency: row.currency,
    start,
    end: new Date(Date.UTC(start.getUTCFullYear(), start.getUTCMonth() + 1, 1)),
    lines: row.lines,
    total: row.total,
    customers: row.customers,
    customersTotal: row.customers_total,
    margin: row.margin,
  };
}

export function statementToProto(row: StatementRow): Statement {
  return create(StatementSchema, {
    statementId: row.id,
    month: row.month,
    closeTime: ts(row.close_time),
    rating: ratingToProto(statementDoc(row)),
  });
}
