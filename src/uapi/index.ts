export * from './layout.js';
export * from './vfio.js';
export * from './iommufd.js';
export * from './ioctls.js';
