import { describeKernelConformance } from '@kvt/models/testing';

// The cpu kernels (JavaScript) and the host KV cache against the reference.
describeKernelConformance({ backend: 'cpu', setup: () => import('../index.js'), tolerance: 1e-5, kernels: ['KvtLinear', 'KvtGatherRows', 'KvtRmsNorm'], weightFormats: ['q8_0', 'q4_0', 'q4_k', 'fp16'] });
