import { describeCacheConformance } from '@kvt/models/testing';

// The shared conformance suite over this backend's own KV cache.
describeCacheConformance({ backend: 'cpu', cache: 'backend', setup: () => import('./index.js') });
