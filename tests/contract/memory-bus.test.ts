import { busContract } from './bus.contract.js';
import { memoryBus } from '../../src/bus/memory-bus.js';

busContract('memory', { open: async (options) => memoryBus(options) });
