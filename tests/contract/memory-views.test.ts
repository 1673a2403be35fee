import { memoryViewStore } from '../../src/projections/memory-views.js';
import { viewStoreContract } from './view-store.contract.js';

viewStoreContract('memory', async () => memoryViewStore());
