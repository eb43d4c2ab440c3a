/**
 * The custom search attributes of certflow's workflows: one list for the dev server
 * launcher (which registers them), the workflows (which upsert them) and the front ends
 * (which set them at start and filter by them). Imports only @temporalio/common, so that
 * workflow code may use it too.
 */
import { defineSearchAttributeKey, SearchAttributeType, type SearchAttributePair } from '@temporalio/common';

/** Name -> type as `temporal server start-dev --search-attribute NAME=TYPE` spells it. */
export const SEARCH_ATTRIBUTES = {
  /** acme | est | cmp | operator */
  CertflowProtocol: 'Keyword',
  /** pending | signing | issued | failed (the request's state) */
  CertflowState: 'Keyword',
  /** The identifiers asked for: "dns:example.com", "ip:127.0.0.1", … */
  CertflowIdentifiers: 'KeywordList',
  /** ACME account / EST client / operator that asked */
  CertflowAccount: 'Keyword',
  /** Last error, full-text searchable */
  CertflowLastError: 'Text',
} as const satisfies Record<string, 'Keyword' | 'KeywordList' | 'Text'>;

/** Typed keys for `typedSearchAttributes` and `upsertSearchAttributes`. */
export const searchAttributeKeys = {
  protocol: defineSearchAttributeKey('CertflowProtocol', SearchAttributeType.KEYWORD),
  state: defineSearchAttributeKey('CertflowState', SearchAttributeType.KEYWORD),
  identifiers: defineSearchAttributeKey('CertflowIdentifiers', SearchAttributeType.KEYWORD_LIST),
  account: defineSearchAttributeKey('CertflowAccount', SearchAttributeType.KEYWORD),
  lastError: defineSearchAttributeKey('CertflowLastError', SearchAttributeType.TEXT),
};

export interface CertflowSearchValues {
  protocol?: string;
  state?: string;
  identifiers?: string[];
  account?: string;
  lastError?: string;
}

/** The pairs for `typedSearchAttributes` of the given values; undefined values are left out. */
export function searchAttributes(values: CertflowSearchValues): SearchAttributePair[] {
  const k = searchAttributeKeys;
  const pairs: SearchAttributePair[] = [];
  if (values.protocol !== undefined) pairs.push({ key: k.protocol, value: values.protocol });
  if (values.state !== undefined) pairs.push({ key: k.state, value: values.state });
  if (values.identifiers !== undefined) pairs.push({ key: k.identifiers, value: values.identifiers });
  if (values.account !== undefined) pairs.push({ key: k.account, value: values.account });
  if (values.lastError !== undefined) pairs.push({ key: k.lastError, value: values.lastError });
  return pairs;
}
