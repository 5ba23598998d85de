// A Vulkan layer for the real-engine test only (scripts/lavapipe-chromium builds it): Mesa's
// lavapipe (a CPU Vulkan device) reports SwiftShader's vendor and device IDs through it.
//
// Why: Chromium's GPU process gives WebGPU a Vulkan adapter only if it can import external
// images or is SwiftShader, which it recognises by vendorID 0x1AE0 and deviceID 0xC0DE; a
// CPU device like lavapipe has no external images and is dropped. Under SwiftShader's IDs
// lavapipe is accepted, and unlike SwiftShader it has shader-f16, so f16 graphs run.
//
// Only vkGetPhysicalDeviceProperties(2) change, and only for a Mesa CPU device; everything
// else passes down the chain. vkCreateInstance and vkCreateDevice are intercepted because a
// layer must record the next link of the chain for the handles it later sees.
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <vulkan/vk_layer.h>
#include <vulkan/vulkan.h>

#define EXPORT __attribute__((visibility("default")))

enum { SWIFTSHADER_VENDOR_ID = 0x1AE0, SWIFTSHADER_DEVICE_ID = 0xC0DE };

// Dispatchable handles (instance, physical device, device) begin with the loader's dispatch
// table pointer: handles of one instance, or of one device, share it, so it is their key.
typedef void *Key;
static Key key_of(const void *handle) { return *(void *const *)handle; }

typedef struct Instance {
    Key key;
    VkInstance handle;
    PFN_vkGetInstanceProcAddr next_gipa;
    PFN_vkDestroyInstance destroy;
    PFN_vkGetPhysicalDeviceProperties properties;
    PFN_vkGetPhysicalDeviceProperties2 properties2;
    PFN_vkGetPhysicalDeviceProperties2 properties2_khr;
    PFN_vkCreateDevice create_device;
    struct Instance *next;
} Instance;

typedef struct Device {
    Key key;
    PFN_vkGetDeviceProcAddr next_gdpa;
    PFN_vkDestroyDevice destroy;
    struct Device *next;
} Device;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static Instance *instances;
static Device *devices;

static Instance *instance_of(const void *handle) {
    Key key = key_of(handle);
    pthread_mutex_lock(&lock);
    Instance *found = instances;
    while (found && found->key != key) found = found->next;
    pthread_mutex_unlock(&lock);
    return found;
}

static Device *device_of(const void *handle) {
    Key key = key_of(handle);
    pthread_mutex_lock(&lock);
    Device *found = devices;
    while (found && found->key != key) found = found->next;
    pthread_mutex_unlock(&lock);
    return found;
}

static void spoof(VkPhysicalDeviceProperties *properties) {
    if (properties->vendorID == VK_VENDOR_ID_MESA
        && properties->deviceType == VK_PHYSICAL_DEVICE_TYPE_CPU) {
        properties->vendorID = SWIFTSHADER_VENDOR_ID;
        properties->deviceID = SWIFTSHADER_DEVICE_ID;
    }
}

static VKAPI_ATTR void VKAPI_CALL GetPhysicalDeviceProperties(
    VkPhysicalDevice physical, VkPhysicalDeviceProperties *properties) {
    instance_of(physical)->properties(physical, properties);
    spoof(properties);
}

// Offered only where the next link has them (GetInstanceProcAddr).
static VKAPI_ATTR void VKAPI_CALL GetPhysicalDeviceProperties2(
    VkPhysicalDevice physical, VkPhysicalDeviceProperties2 *properties) {
    instance_of(physical)->properties2(physical, properties);
    spoof(&properties->properties);
}

static VKAPI_ATTR void VKAPI_CALL GetPhysicalDeviceProperties2KHR(
    VkPhysicalDevice physical, VkPhysicalDeviceProperties2 *properties) {
    instance_of(physical)->properties2_khr(physical, properties);
    spoof(&properties->properties);
}

// The loader's link to the next layer, in a create info's pNext chain.
static VkLayerInstanceCreateInfo *instance_link(const VkInstanceCreateInfo *create_info) {
    VkLayerInstanceCreateInfo *info = (VkLayerInstanceCreateInfo *)create_info->pNext;
    while (info && !(info->sType == VK_STRUCTURE_TYPE_LOADER_INSTANCE_CREATE_INFO
                     && info->function == VK_LAYER_LINK_INFO)) {
        info = (VkLayerInstanceCreateInfo *)info->pNext;
    }
    return info;
}

static VkLayerDeviceCreateInfo *device_link(const VkDeviceCreateInfo *create_info) {
    VkLayerDeviceCreateInfo *info = (VkLayerDeviceCreateInfo *)create_info->pNext;
    while (info && !(info->sType == VK_STRUCTURE_TYPE_LOADER_DEVICE_CREATE_INFO
                     && info->function == VK_LAYER_LINK_INFO)) {
        info = (VkLayerDeviceCreateInfo *)info->pNext;
    }
    return info;
}

static VKAPI_ATTR VkResult VKAPI_CALL CreateInstance(
    const VkInstanceCreateInfo *create_info, const VkAllocationCallbacks *allocator, VkInstance *out) {
    VkLayerInstanceCreateInfo *link = instance_link(create_info);
    if (!link) return VK_ERROR_INITIALIZATION_FAILED;
    PFN_vkGetInstanceProcAddr next = link->u.pLayerInfo->pfnNextGetInstanceProcAddr;
    link->u.pLayerInfo = link->u.pLayerInfo->pNext; // the next layer takes the rest of the chain
    Instance *instance = calloc(1, sizeof *instance);
    if (!instance) return VK_ERROR_OUT_OF_HOST_MEMORY;
    VkResult result = ((PFN_vkCreateInstance)next(VK_NULL_HANDLE, "vkCreateInstance"))(create_info, allocator, out);
    if (result != VK_SUCCESS) {
        free(instance);
        return result;
    }
    VkInstance handle = *out;
    *instance = (Instance){
        .key = key_of(handle),
        .handle = handle,
        .next_gipa = next,
        .destroy = (PFN_vkDestroyInstance)next(handle, "vkDestroyInstance"),
        .properties = (PFN_vkGetPhysicalDeviceProperties)next(handle, "vkGetPhysicalDeviceProperties"),
        .properties2 = (PFN_vkGetPhysicalDeviceProperties2)next(handle, "vkGetPhysicalDeviceProperties2"),
        .properties2_khr = (PFN_vkGetPhysicalDeviceProperties2)next(handle, "vkGetPhysicalDeviceProperties2KHR"),
        .create_device = (PFN_vkCreateDevice)next(handle, "vkCreateDevice"),
    };
    pthread_mutex_lock(&lock);
    instance->next = instances;
    instances = instance;
    pthread_mutex_unlock(&lock);
    return VK_SUCCESS;
}

static VKAPI_ATTR void VKAPI_CALL DestroyInstance(VkInstance handle, const VkAllocationCallbacks *allocator) {
    if (!handle) return;
    Key key = key_of(handle);
    pthread_mutex_lock(&lock);
    Instance **link = &instances;
    while (*link && (*link)->key != key) link = &(*link)->next;
    Instance *instance = *link;
    if (instance) *link = instance->next;
    pthread_mutex_unlock(&lock);
    if (!instance) return;
    instance->destroy(handle, allocator);
    free(instance);
}

static VKAPI_ATTR VkResult VKAPI_CALL CreateDevice(VkPhysicalDevice physical, const VkDeviceCreateInfo *create_info,
                                                   const VkAllocationCallbacks *allocator, VkDevice *out) {
    VkLayerDeviceCreateInfo *link = device_link(create_info);
    Instance *instance = instance_of(physical);
    if (!link || !instance) return VK_ERROR_INITIALIZATION_FAILED;
    PFN_vkGetDeviceProcAddr next_gdpa = link->u.pLayerInfo->pfnNextGetDeviceProcAddr;
    link->u.pLayerInfo = link->u.pLayerInfo->pNext;
    Device *device = calloc(1, sizeof *device);
    if (!device) return VK_ERROR_OUT_OF_HOST_MEMORY;
    VkResult result = instance->create_device(physical, create_info, allocator, out);
    if (result != VK_SUCCESS) {
        free(device);
        return result;
    }
    device->key = key_of(*out);
    device->next_gdpa = next_gdpa;
    device->destroy = (PFN_vkDestroyDevice)next_gdpa(*out, "vkDestroyDevice");
    pthread_mutex_lock(&lock);
    device->next = devices;
    devices = device;
    pthread_mutex_unlock(&lock);
    return VK_SUCCESS;
}

static VKAPI_ATTR void VKAPI_CALL DestroyDevice(VkDevice handle, const VkAllocationCallbacks *allocator) {
    if (!handle) return;
    Key key = key_of(handle);
    pthread_mutex_lock(&lock);
    Device **link = &devices;
    while (*link && (*link)->key != key) link = &(*link)->next;
    Device *device = *link;
    if (device) *link = device->next;
    pthread_mutex_unlock(&lock);
    if (!device) return;
    device->destroy(handle, allocator);
    free(device);
}

static VKAPI_ATTR PFN_vkVoidFunction VKAPI_CALL GetDeviceProcAddr(VkDevice handle, const char *name) {
    if (!strcmp(name, "vkGetDeviceProcAddr")) return (PFN_vkVoidFunction)GetDeviceProcAddr;
    if (!strcmp(name, "vkDestroyDevice")) return (PFN_vkVoidFunction)DestroyDevice;
    Device *device = device_of(handle);
    return device ? device->next_gdpa(handle, name) : NULL;
}

static VKAPI_ATTR PFN_vkVoidFunction VKAPI_CALL GetInstanceProcAddr(VkInstance handle, const char *name) {
    static const struct {
        const char *name;
        PFN_vkVoidFunction function;
    } own[] = {
        {"vkGetInstanceProcAddr", (PFN_vkVoidFunction)GetInstanceProcAddr},
        {"vkCreateInstance", (PFN_vkVoidFunction)CreateInstance},
        {"vkDestroyInstance", (PFN_vkVoidFunction)DestroyInstance},
        {"vkCreateDevice", (PFN_vkVoidFunction)CreateDevice},
        {"vkGetDeviceProcAddr", (PFN_vkVoidFunction)GetDeviceProcAddr},
        {"vkDestroyDevice", (PFN_vkVoidFunction)DestroyDevice},
        {"vkGetPhysicalDeviceProperties", (PFN_vkVoidFunction)GetPhysicalDeviceProperties},
    };
    for (size_t n = 0; n < sizeof own / sizeof own[0]; n++) {
        if (!strcmp(name, own[n].name)) return own[n].function;
    }
    Instance *instance = handle ? instance_of(handle) : NULL;
    if (!instance) return NULL;
    if (!strcmp(name, "vkGetPhysicalDeviceProperties2")) {
        return instance->properties2 ? (PFN_vkVoidFunction)GetPhysicalDeviceProperties2 : NULL;
    }
    if (!strcmp(name, "vkGetPhysicalDeviceProperties2KHR")) {
        return instance->properties2_khr ? (PFN_vkVoidFunction)GetPhysicalDeviceProperties2KHR : NULL;
    }
    return instance->next_gipa(handle, name);
}

// The loader's entry point into the layer (the manifest names it).
EXPORT VKAPI_ATTR VkResult VKAPI_CALL vkNegotiateLoaderLayerInterfaceVersion(VkNegotiateLayerInterface *interface) {
    if (interface->loaderLayerInterfaceVersion > 2) interface->loaderLayerInterfaceVersion = 2;
    interface->pfnGetInstanceProcAddr = GetInstanceProcAddr;
    interface->pfnGetDeviceProcAddr = GetDeviceProcAddr;
    interface->pfnGetPhysicalDeviceProcAddr = NULL;
    return VK_SUCCESS;
}
