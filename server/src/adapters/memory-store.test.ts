// Runs the shared Store contract against the in-memory store.

import { openMemoryStore } from './memory-store.ts';
import { storeContract } from './store.contract.ts';

storeContract('memory', () => openMemoryStore());
// The same contract with the read cache off and with a cache so small that it evicts constantly.
storeContract('memory, no read cache', () => openMemoryStore({ cacheEntries: 0 }));
storeContract('memory, 2-entry read cache', () => openMemoryStore({ cacheEntries: 2 }));
