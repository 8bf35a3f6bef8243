// Runs the shared Store contract against the in-memory store.

import { openMemoryStore } from './memory-store.ts';
import { storeContract } from './store.contract.ts';

storeContract('memory', openMemoryStore);
