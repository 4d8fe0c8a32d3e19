// BillingService: price books, rating, statements. A caller sees its own tenant and its
// descendants; another tenant's books and statements are NOT_FOUND, never PERMISSION_DENIED. A book
// for a tenant is set by an admin of one of its ancestors only.
import type { HandlerContext, ServiceImpl } from '@connectrpc/connect';
import type {
  BillingService,
  CloseStatementRequest,
  CreatePriceBookRequest,
  ExportStatementRequest,
  GetPriceBookRequest,
  GetStatementRequest,
  ListPriceBooksRequest,
  ListStatementsRequest,
  RateUsageRequest,
} from '@cphone/proto';
import type { Kysely } from 'kysely';
import { principalOf } from '../api/context.js';
import { dateOf } from '../api/convert.js';
import { idempotent } from '../api/idempotency.js';
import { pageOf, readPage } from '../api/pagination.js';
import type { Principal } from '../auth/principal.js';
import { requireRole, resolveTenant } from '../auth/scope.js';
import type { Clock } from '../clock.js';
import {
  FailedPreconditionError,
  InvalidArgumentError,
  NotFoundError,
  PermissionDeniedError,
} from '../errors.js';
import { newId } from '../ids.js';
import type { Database, StoredCustomer } from '../store/schema.js';
import { dimensionFromProto, priceBookToProto, ratingToProto, statementToProto } from './billing-view.js';
import { formatScaled } from './money.js';
import { getPriceBook, insertPriceBook, listPriceBooks, validateBook } from './price-books.js';
import { rateTenants, storedLine } from './rate.js';
import { statementCsvChunks } from './statement-csv.js';
import {
  closeStatement,
  parseMonth,
  requireOver,
  type StatementRow,
  statementById,
  statementOf,
} from './statements.js';

export interface BillingServiceDeps {
  readonly db: Kysely<Database>;
  readonly clock: Clock;
}

const MAX_RATING_DAYS = 366;

async function tenantRow(deps: BillingServiceDeps, principal: Principal, requested: string) {
  const id = resolveTenant(principal, requested);
  const row = await deps.db
    .selectFrom('tenant')
    .select(['id', 'kind', 'parent_id'])
    .where('id', '=', id)
    .where('delete_time', 'is', null)
    .executeTakeFirst();
  if (!row) throw new NotFoundError('tenant', id);
  return row;
}

async function kindOf(deps: BillingServiceDeps, tenantId: string): Promise<string> {
  const row = await deps.db.selectFrom('tenant').select('kind').where('id', '=', tenantId).executeTakeFirst();
  return row?.kind ?? 'customer';
}

export async function createPriceBook(
  deps: BillingServiceDeps,
  req: CreatePriceBookRequest,
  context: HandlerContext,
) {
  const principal = principalOf(context);
  requireRole(principal, 'tenant_admin', 'setting price books');
  const input = req.priceBook;
  if (!input?.tenantId) throw new InvalidArgumentError('price_book.tenant_id', '', 'is required');
  const tenant = await tenantRow(deps, principal, input.tenantId);
  if (tenant.id === principal.tenantId) {
    throw new PermissionDeniedError(
      `only an admin of an ancestor of tenant ${JSON.stringify(tenant.id)} may set its price book`,
    );
  }
  const book = validateBook(
    {
      currency: input.currency,
      effectiveFrom: dateOf(input.effectiveFrom),
      prices: input.prices.map((p) => ({
        dimension: dimensionFromProto(p.dimension),
        deviceClass: p.deviceClass,
        includedQuantity: p.includedQuantity,
        tiers: p.tiers.map((t) => ({ upTo: t.upTo, unitPrice: t.unitPrice })),
      })),
      minimumCharge: input.minimumCharge,
      displayName: input.displayName,
    },
    deps.clock.now(),
  );
  const { priceBookId } = await idempotent(
    deps.db,
    {
      tenantId: principal.tenantId,
      method: 'BillingService/CreatePriceBook',
      key: req.requestId,
      // The time a book takes effect when none is given moves with the clock: not part of the request.
      request: { tenant: tenant.id, ...book, effectiveFrom: input.effectiveFrom ? book.effectiveFrom : null },
    },
    async (trx) => {
      const id = newId('pbk');
      await insertPriceBook(trx, {
        ...book,
        id,
        tenantId: tenant.id,
        creator: principal.actor,
        createTime: deps.clock.now(),
      });
      return { priceBookId: id };
    },
    { save: (r) => r, load: (saved) => saved as { priceBookId: string } },
  );
  const row = await getPriceBook(deps.db, priceBookId);
  if (!row) throw new NotFoundError('price_book', priceBookId);
  return { priceBook: priceBookToProto(row, tenant.kind) };
}

export async function getPriceBookHandler(
  deps: BillingServiceDeps,
  req: GetPriceBookRequest,
  context: HandlerContext,
) {
  const principal = principalOf(context);
  const row = await getPriceBook(deps.db, req.priceBookId);
  if (!row || !principal.visibleTenants.includes(row.tenant_id)) {
    throw new NotFoundError('price_book', req.priceBookId);
  }
  return { priceBook: priceBookToProto(row, await kindOf(deps, row.tenant_id)) };
}

export async function listPriceBooksHandler(
  deps: BillingServiceDeps,
  req: ListPriceBooksRequest,
  context: HandlerContext,
) {
  const tenant = await tenantRow(deps, principalOf(context), req.tenantId);
  const page = readPage(req.pageSize, req.pageToken, { method: 'ListPriceBooks', tenant: tenant.id });
  const rows = await listPriceBooks(
    deps.db,
    tenant.id,
    page.limit,
    page.after === undefined ? undefined : new Date(Number(page.after)),
  );
  const { items, nextPageToken } = pageOf(rows, page, (r) => String(r.effective_from.getTime()));
  return { priceBooks: items.map((r) => priceBookToProto(r, tenant.kind)), nextPageToken };
}

export async function rateUsage(deps: BillingServiceDeps, req: RateUsageRequest, context: HandlerContext) {
  const tenant = await tenantRow(deps, principalOf(context), req.tenantId);
  const start = dateOf(req.startTime);
  const end = dateOf(req.endTime);
  if (!start) throw new InvalidArgumentError('start_time', '', 'is required');
  if (!end) throw new InvalidArgumentError('end_time', '', 'is required');
  if (end <= start) throw new InvalidArgumentError('end_time', end.toISOString(), 'must be after start_time');
  if (end.getTime() - start.getTime() > MAX_RATING_DAYS * 86_400_000) {
    throw new InvalidArgumentError(
      'end_time',
      end.toISOString(),
      `must be at most ${MAX_RATING_DAYS} days after start_time`,
    );
  }
  const rating = (await rateTenants(deps.db, [tenant.id], start, end)).get(tenant.id);
  if (!rating) {
    throw new FailedPreconditionError(
      `tenant ${JSON.stringify(tenant.id)} has no price book in force between ${start.toISOString()} and ${end.toISOString()}`,
    );
  }
  let customers: StoredCustomer[] = [];
  let customersMinor = 0n;
  if (req.includeCustomers) {
    const kids = await deps.db
      .selectFrom('tenant')
      .select('id')
      .where('parent_id', '=', tenant.id)
      .where('delete_time', 'is', null)
      .orderBy('id')
      .execute();
    const rated = await rateTenants(
      deps.db,
      kids.map((k) => k.id),
      start,
      end,
    );
    customers = kids.map(({ id }) => {
      const r = rated.get(id);
      customersMinor += r?.totalMinor ?? 0n;
      return {
        tenant_id: id,
        priced: r !== undefined,
        total: formatScaled(r?.totalMinor ?? 0n, rating.exponent),
        statement_id: '',
      };
    });
  }
  return {
    rating: ratingToProto({
      tenantId: tenant.id,
      currency: rating.currency,
      start,
      end,
      lines: rating.lines.map((l) => storedLine(l, rating.exponent)),
      total: formatScaled(rating.totalMinor, rating.exponent),
      customers,
      customersTotal: formatScaled(customersMinor, rating.exponent),
      margin: formatScaled(customersMinor - rating.totalMinor, rating.exponent),
    }),
  };
}

export async function closeStatementHandler(
  deps: BillingServiceDeps,
  req: CloseStatementRequest,
  context: HandlerContext,
) {
  const principal = principalOf(context);
  requireRole(principal, 'tenant_admin', 'closing statements');
  const tenant = await tenantRow(deps, principal, req.tenantId);
  const row = await closeStatement(deps.db, tenant.id, parseMonth(req.month), deps.clock);
  return { statement: statementToProto(row) };
}

/** The statement a Get or Export names: by id, or by tenant and month. */
async function findStatement(
  deps: BillingServiceDeps,
  principal: Principal,
  req: { statementId: string; tenantId: string; month: string },
): Promise<StatementRow> {
  if (req.statementId) {
    const row = await statementById(deps.db, req.statementId).catch(() => undefined);
    if (!row || !principal.visibleTenants.includes(row.tenant_id)) {
      throw new NotFoundError('statement', req.statementId);
    }
    return row;
  }
  const tenantId = resolveTenant(principal, req.tenantId);
  const month = parseMonth(req.month);
  requireOver(month, deps.clock);
  const row = await statementOf(deps.db, tenantId, month.text);
  if (!row) throw new NotFoundError('statement', `${tenantId}/${month.text} (not closed yet)`);
  return row;
}

export async function getStatement(
  deps: BillingServiceDeps,
  req: GetStatementRequest,
  context: HandlerContext,
) {
  return { statement: statementToProto(await findStatement(deps, principalOf(context), req)) };
}

export async function listStatements(
  deps: BillingServiceDeps,
  req: ListStatementsRequest,
  context: HandlerContext,
) {
  const tenant = await tenantRow(deps, principalOf(context), req.tenantId);
  const page = readPage(req.pageSize, req.pageToken, { method: 'ListStatements', tenant: tenant.id });
  let query = deps.db
    .selectFrom('statement')
    .selectAll()
    .where('tenant_id', '=', tenant.id)
    .orderBy('month', 'desc')
    .limit(page.limit);
  if (page.after !== undefined) query = query.where('month', '<', page.after);
  const { items, nextPageToken } = pageOf(await query.execute(), page, (r) => r.month);
  return { statements: items.map(statementToProto), nextPageToken };
}

export async function* exportStatement(
  deps: BillingServiceDeps,
  req: ExportStatementRequest,
  context: HandlerContext,
) {
  const row = await findStatement(deps, principalOf(context), req);
  for (const chunk of statementCsvChunks(row)) yield { csvChunk: chunk };
}

export function billingService(deps: BillingServiceDeps): ServiceImpl<typeof BillingService> {
  return {
    createPriceBook: (req, context) => createPriceBook(deps, req, context),
    getPriceBook: (req, context) => getPriceBookHandler(deps, req, context),
    listPriceBooks: (req, context) => listPriceBooksHandler(deps, req, context),
    rateUsage: (req, context) => rateUsage(deps, req, context),
    closeStatement: (req, context) => closeStatementHandler(deps, req, context),
    getStatement: (req, context) => getStatement(deps, req, context),
    listStatements: (req, context) => listStatements(deps, req, context),
    exportStatement: (req, context) => exportStatement(deps, req, context),
  };
}
