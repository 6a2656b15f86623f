/** The quota layer: exact quotas per prefix, counted on the write path in O(1) store calls. */
export { withQuotas, QuotaLayer } from './layer.js';
export { QuotaControl, quotaOf, type QuotaAlert, type QuotaCounterReport, type QuotaLevel, type QuotaOptions } from './control.js';
export { reconcileQuotas, type QuotaDrift, type ReconcileReport } from './reconcile.js';
export { EmbeddedQuotaStore } from './embedded-store.js';
export { parseQuotaRules, QuotaMatcher, type QuotaLimit, type QuotaRules } from './rules.js';
export type { QuotaStore } from './store.js';
