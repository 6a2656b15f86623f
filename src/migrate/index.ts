/**
 * `stowage/migrate`: copies every object of one storage to another, resumably
 * (a checkpoint file), verifying what it copied; the CLI's `stowage migrate` runs it.
 */
export { migrate, type MigrateOptions, type MigrateProgress, type MigrateReport } from './migrate.js';
